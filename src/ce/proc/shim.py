"""The agent shim: runs an agent detached from the process that launched it (a Ray worker), and
stops the agent's whole tree when asked, when that process dies, or when the coordinator is gone.

Ray kills only a dying worker's direct children, so an agent's tool subprocesses would outlive
every Ray-level stop. The shim leaves the worker (double fork + setsid), becomes a child
subreaper (what the agent starts, even with setsid, is re-parented to it), starts the agent in a
session of its own with its output appended to the log, and watches: SIGTERM/SIGINT/SIGHUP, the
worker's pid (`--watch-pid`), the heartbeat file's age (`--heartbeat`). Stopping signals the
agent's group, everything carrying its run token and everything re-parented to the shim: TERM,
`--grace` seconds (SIGUSR1 cuts them short), KILL. It never ignores SIGCHLD: exit codes pass
through, also those of the agent's own children (`bash -c 'exit 3'` reads 3).

The status file (JSON, replaced atomically) says who runs and, at the end, how it ended;
`ShimChild` reads it, from the launching process or any later one (`ShimChild.attach`).

    python -m ce.proc.shim --status STATUS --log LOG [--watch-pid PID]
        [--heartbeat FILE --heartbeat-seconds S] [--grace S] [--cwd DIR] -- ARGV...

Not exported by `ce.proc`: `-m` runs this module as `__main__`, which must not be imported first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ce.proc.procfs import pid_alive, start_time, tagged
from ce.proc.result import ProcessError
from ce.proc.shim_run import HURRY, KILL_WAIT_SECONDS, Shim, detach, parse
from ce.proc.shim_status import ShimError, ShimStatus, StopReason
from ce.proc.stopping import POLL_SECONDS, not_subreaper, signal_group, signal_pids

__all__ = ["ShimChild", "ShimError", "ShimStatus", "StopReason", "spawn_shim"]

START_TIMEOUT_SECONDS = 30.0  # a loaded node may take long to start Python
_LOG_TAIL_BYTES = 4000


class ShimChild:
    """An agent running under a shim, seen through its status file (the `Child` protocol)."""

    def __init__(self, status_path: Path, log_path: Path, status: ShimStatus) -> None:
        if status.agent_pid is None or status.pgid is None:
            raise ShimError(f"the shim's status file {status_path} names no agent")
        self.status_path = status_path
        self.log_path = log_path
        self._status = status

    @classmethod
    def attach(
        cls, status_path: Path, log_path: Path, *, timeout: float = START_TIMEOUT_SECONDS
    ) -> ShimChild:
        """The shim that wrote `status_path`, from any process (a new actor, a resumed run)."""
        return cls(status_path, log_path, _await_start(status_path, log_path, timeout))

    @property
    def pid(self) -> int:
        assert self._status.agent_pid is not None  # checked in __init__
        return self._status.agent_pid

    @property
    def pgid(self) -> int:
        assert self._status.pgid is not None  # checked in __init__
        return self._status.pgid

    @property
    def token(self) -> str:
        """The agent's CE_RUN_TOKEN: what it started carries it, even outside its group."""
        return self._status.token or ""

    @property
    def shim_pid(self) -> int:
        return self._status.shim_pid

    @property
    def returncode(self) -> int | None:
        return self._status.returncode

    @property
    def stopped(self) -> StopReason | None:
        return self._status.stopped

    def poll(self) -> int | None:
        if self._status.returncode is None:
            self._status = ShimStatus.read(self.status_path) or self._status
        if self._status.returncode is None and not self._shim_alive():
            # It may have written its end record just before it exited.
            self._status = ShimStatus.read(self.status_path) or self._status
            if self._status.returncode is None:
                self._take_over()
        return self._status.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """The agent's exit code, or None if it still runs after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(POLL_SECONDS)
        return self.returncode

    def stop(self, grace: float = 5.0) -> int | None:
        """Have the shim stop the whole tree: SIGTERM, `grace` seconds (at most the shim's own),
        then KILL. Idempotent; returns the agent's exit code."""
        for signum, wait in (
            (signal.SIGTERM, grace),
            (HURRY, KILL_WAIT_SECONDS + 1.0),
            (signal.SIGKILL, 1.0),
        ):
            if self.poll() is not None:
                break
            self._signal_shim(signum)
            self.wait(wait)
        return self.returncode

    def drain(self, timeout: float = 0.0) -> None:
        """Nothing to wait for: the agent writes its log itself, through no pipe of ours."""

    def _shim_alive(self) -> bool:
        pid = self._status.shim_pid
        return pid_alive(pid) and start_time(pid) == self._status.shim_started

    def _signal_shim(self, signum: signal.Signals) -> None:
        if self._shim_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._status.shim_pid, signum)

    def _take_over(self) -> None:
        """The shim is gone without its end record (SIGKILL, the OOM killer): nobody watches
        the agent any more, so its tree is killed from here and recorded as killed."""
        if self._status.token is not None:
            members = tagged(self._status.token)
            if self.pgid in members:  # the group is still the agent's, not a reused number
                signal_group(self.pgid, signal.SIGKILL)
            signal_pids(members, signal.SIGKILL)
        self._status = dataclasses.replace(
            self._status, returncode=-signal.SIGKILL, stopped="shim-gone"
        )
        self._status.write(self.status_path)

    def __repr__(self) -> str:
        return f"ShimChild(pid={self.pid}, shim_pid={self.shim_pid}, returncode={self.returncode})"


def spawn_shim(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    status_path: Path,
    log_path: Path,
    watch_pid: int | None = None,
    heartbeat: Path | None = None,
    heartbeat_seconds: float | None = None,
    grace: float = 5.0,
    timeout: float = START_TIMEOUT_SECONDS,
) -> ShimChild:
    """Start `argv` under a detached shim; return once the agent runs.

    Raises ProcessError if the agent could not start (like `spawn_group`), ShimError if the
    shim did not say within `timeout` seconds (its log is in the message).
    """
    if (heartbeat is None) != (heartbeat_seconds is None):
        raise ValueError("heartbeat and heartbeat_seconds go together")
    for path in (status_path, log_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    status_path.unlink(missing_ok=True)  # an earlier launch's record is not this one's
    command = [sys.executable, "-P", "-m", "ce.proc.shim", "--status", str(status_path)]
    command += ["--log", str(log_path), "--grace", str(grace), "--cwd", str(cwd)]
    if watch_pid is not None:
        command += ["--watch-pid", str(watch_pid)]
    if heartbeat is not None:
        command += ["--heartbeat", str(heartbeat), "--heartbeat-seconds", str(heartbeat_seconds)]
    # Not from the agent's directory: `-m` would import a `ce` found there.
    with log_path.open("ab") as log, not_subreaper():
        launcher = subprocess.Popen(
            [*command, "--", *argv],
            cwd=status_path.parent,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        launched = launcher.wait()  # once the shim has left it and written its first record
    if launched != 0:
        raise ShimError(f"the shim could not start (exit code {launched}){_tail(log_path)}")
    return ShimChild(status_path, log_path, _await_start(status_path, log_path, timeout, argv))


def _await_start(
    status_path: Path, log_path: Path, timeout: float, argv: Sequence[str] = ()
) -> ShimStatus:
    deadline = time.monotonic() + timeout
    while (status := ShimStatus.read(status_path)) is None or not status.started:
        if time.monotonic() >= deadline:
            if status is not None and start_time(status.shim_pid) == status.shim_started:
                # TERM, not KILL: should it start the agent after all, it stops it at once.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(status.shim_pid, signal.SIGTERM)
            raise ShimError(f"no agent started under the shim in {timeout:g} s{_tail(log_path)}")
        time.sleep(POLL_SECONDS)
    if status.error is not None:
        raise ProcessError(
            argv=argv,
            returncode=status.returncode or 127,
            stderr=status.error,
            reason="could not start",
        )
    return status


def _tail(log_path: Path) -> str:
    try:
        with log_path.open("rb") as log:
            log.seek(max(0, log_path.stat().st_size - _LOG_TAIL_BYTES))
            text = log.read().decode("utf-8", "replace").rstrip()
    except OSError:
        return ""
    return f"; its log {log_path}:\n{text}" if text else f"; its log {log_path} is empty"


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    ready = detach(options.log, options.status)
    returncode = Shim(options).run(ready)
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main())
