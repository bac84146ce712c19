"""The running agent shim (`python -m ce.proc.shim`, see `ce.proc.shim`): leaves its launcher,
starts the agent, watches the worker and the heartbeat, stops the whole tree, records the end."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ce.proc.group import Child, spawn_group
from ce.proc.procfs import children, group_alive, pid_alive, start_time, tagged
from ce.proc.result import ProcessError
from ce.proc.shim_status import ShimStatus, StopReason
from ce.proc.stopping import POLL_SECONDS, signal_group, signal_pids

WATCH_SECONDS = 0.2  # how often the shim looks at the worker and the heartbeat
KILL_WAIT_SECONDS = 5.0  # after SIGKILL, how long the tree may take to disappear
HURRY = signal.SIGUSR1  # while stopping: KILL now, the grace is over
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShimOptions:
    status: Path
    log: Path
    argv: tuple[str, ...]
    cwd: Path
    grace: float = 5.0
    watch_pid: int | None = None
    heartbeat: Path | None = None
    heartbeat_seconds: float = 0.0


class Shim:
    """The running shim: starts the agent, watches, stops the tree, records the end."""

    def __init__(self, options: ShimOptions) -> None:
        self.options = options
        self.reason: StopReason | None = None
        self.hurry = False
        self._since = time.time()  # a heartbeat file not written yet counts from here
        self._watched = self._identity(options.watch_pid)

    def run(self, ready: int | None = None) -> int:
        """Supervise the agent to its end; the agent's exit code (negative: a signal).
        `ready` is closed once the first record is written (the launcher waits for it)."""
        for signum in _STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        signal.signal(HURRY, self._on_hurry)
        status = ShimStatus(
            shim_pid=os.getpid(), shim_started=start_time(os.getpid()), grace=self.options.grace
        )
        status.write(self.options.status)
        if ready is not None:
            os.close(ready)
        try:
            child = spawn_group(
                self.options.argv, cwd=self.options.cwd, env=os.environ, log_path=self.options.log
            )
        except ProcessError as exc:
            print(f"ce shim: {exc}", file=sys.stderr, flush=True)
            ended = dataclasses.replace(status, returncode=exc.returncode, error=exc.stderr)
            ended.write(self.options.status)
            return exc.returncode
        status = dataclasses.replace(
            status, agent_pid=child.pid, pgid=child.pgid, token=child.token
        )
        status.write(self.options.status)
        self._supervise(child)
        returncode = child.returncode
        assert returncode is not None  # _stop_tree reaped it
        dataclasses.replace(status, returncode=returncode, stopped=self.reason).write(
            self.options.status
        )
        return returncode

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.reason = self.reason or "signal"

    def _on_hurry(self, signum: int, frame: FrameType | None) -> None:
        self.hurry = True

    def _supervise(self, child: Child) -> None:
        while child.wait(WATCH_SECONDS) is None:
            self.reason = self.reason or self._gone()
            if self.reason is not None:
                print(f"ce shim: stopping the agent ({self.reason})", file=sys.stderr, flush=True)
                break
        # Also once the agent ended by itself: what it left running goes with it.
        self._stop_tree(child)

    def _gone(self) -> StopReason | None:
        """Whether the worker or the coordinator is gone."""
        if self.options.watch_pid is not None and (
            self._watched is None or self._identity(self.options.watch_pid) != self._watched
        ):
            return "worker-gone"
        if self.options.heartbeat is not None:
            try:
                beat = max(self._since, self.options.heartbeat.stat().st_mtime)
            except FileNotFoundError:
                beat = self._since
            if time.time() - beat > self.options.heartbeat_seconds:
                return "coordinator-gone"
        return None

    @staticmethod
    def _identity(pid: int | None) -> int | None:
        """A live process's start time (a zombie counts as gone)."""
        return start_time(pid) if pid is not None and pid_alive(pid) else None

    def _stop_tree(self, child: Child) -> None:
        """TERM to everything at once, the grace (unless told to hurry), KILL; reap all."""
        for signum, wait in (
            (signal.SIGTERM, self.options.grace),
            (signal.SIGKILL, KILL_WAIT_SECONDS),
        ):
            signal_group(child.pgid, signum)
            signal_pids(self._strays(child), signum)
            deadline = time.monotonic() + wait
            while self._reap(child):
                if time.monotonic() >= deadline or (self.hurry and signum == signal.SIGTERM):
                    break
                time.sleep(POLL_SECONDS)
            else:
                return

    def _strays(self, child: Child) -> list[int]:
        """What left the agent's group: tagged with its token, or re-parented to us."""
        found = set(tagged(child.token)) | set(children(os.getpid()))
        found.discard(child.pid)  # the leader: signalled with its group, reaped by its Popen
        return sorted(found)

    def _reap(self, child: Child) -> bool:
        """Reap what ended; whether any of the tree still runs."""
        child.poll()
        for pid in children(os.getpid()):
            if pid != child.pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        return (
            child.returncode is None
            or group_alive(child.pgid)
            or any(pid_alive(pid) for pid in self._strays(child))
        )


def parse(argv: Sequence[str]) -> ShimOptions:
    """The command line: options, `--`, the agent's argv."""
    if "--" not in argv:
        raise SystemExit("ce shim: usage: python -m ce.proc.shim --status F --log F ... -- ARGV")
    split = list(argv).index("--")
    parser = argparse.ArgumentParser(prog="python -m ce.proc.shim")
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--watch-pid", type=int)
    parser.add_argument("--heartbeat", type=Path)
    parser.add_argument("--heartbeat-seconds", type=float, default=0.0)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--cwd", type=Path, default=Path.cwd())
    args = parser.parse_args(argv[:split])
    command = tuple(argv[split + 1 :])
    if not command:
        parser.error("no command after --")
    if args.heartbeat is not None and args.heartbeat_seconds <= 0:
        parser.error("--heartbeat needs --heartbeat-seconds > 0")
    return ShimOptions(
        status=args.status.absolute(),
        log=args.log.absolute(),
        argv=command,
        cwd=args.cwd.absolute(),
        grace=args.grace,
        watch_pid=args.watch_pid,
        heartbeat=None if args.heartbeat is None else args.heartbeat.absolute(),
        heartbeat_seconds=args.heartbeat_seconds,
    )


def detach(log: Path, status: Path) -> int:
    """Leave the launching process for good: fork, setsid, fork. The launcher exits once the
    shim is re-parented (to init or a subreaper above it, never to it) and has closed the
    returned descriptor (`Shim.run` does once its first record is written), or died: then 1."""
    ready_read, ready_write = os.pipe()
    if (first := os.fork()) != 0:
        os.close(ready_write)
        os.waitpid(first, 0)
        os.read(ready_read, 1)  # end of file: the shim wrote its record, or died
        os._exit(0 if status.exists() else 1)
    os.close(ready_read)
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    stdin = os.open(os.devnull, os.O_RDONLY)
    output = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for fd, target in ((stdin, 0), (output, 1), (output, 2)):
        os.dup2(fd, target)
    os.close(stdin)
    os.close(output)
    return ready_write
