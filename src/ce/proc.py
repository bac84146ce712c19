"""The one process helper: run a command to completion, or supervise a process group.

Nothing else in `ce` imports `subprocess`. Commands are argv lists, never a shell line.

Supervision works on process groups: `spawn_group` starts the child as the leader of a new
session, so everything it starts stays in its group unless it leaves on purpose, and
`stop_group` signals the whole group. On Linux `ce` also becomes a child subreaper when it
first spawns a group, so members orphaned by their parent (a double-forked daemon) are
re-parented to us and reaped by `stop_group` instead of lingering as zombies.

A descendant that calls `setsid()` or `setpgid()` leaves the group, but not its environment:
every child gets its own `CE_RUN_TOKEN`, and stopping it also stops every process whose
environment carries that token (Linux /proc; a process that clears its environment still
escapes). A command is judged by its exit status: once it exited, its pipes get a moment to
close, then whatever still holds them is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from ce.core.errors import CeFailure

_STDERR_TAIL_LINES = 20
_DRAIN_SECONDS = 5.0  # after killing a timed-out group, how long its pipes may take to close
_KILL_WAIT_SECONDS = 5.0  # after SIGKILL, how long the group may take to disappear
_POLL_SECONDS = 0.05
_EXITED_DRAIN_SECONDS = 2.0  # after the leader exited, how long its pipes may stay open
_STEP_SECONDS = 0.1  # how often `run` looks whether the leader exited while its pipes are open
RUN_MARK = "CE_RUN_TOKEN"  # marks everything a child started, setsid or not
_TOKENS = itertools.count(1)
# The contained commands (checks) running now, group → token: stopped all at once on Ctrl-C.
_CHECKS: dict[int, str] = {}
_CHECKS_LOCK = threading.Lock()
_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_EXIT_NOT_FOUND = 127  # the shell's codes for "command not found" / "cannot execute"
_EXIT_CANNOT_EXECUTE = 126


@dataclass(frozen=True, kw_only=True)
class Completed:
    """A finished command and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class ProcessError(CeFailure):
    """A command failed, could not start, or timed out.

    `returncode` is the exit code (negative: killed by that signal; 127: not found).
    """

    def __init__(
        self,
        *,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        reason: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason
        super().__init__(self._describe())

    @classmethod
    def from_completed(cls, completed: Completed, *, reason: str | None = None) -> Self:
        return cls(
            argv=completed.argv,
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            reason=reason,
        )

    def _describe(self) -> str:
        what = self.reason or "failed"
        lines = [f"command {what} (exit code {self.returncode}): {shlex.join(self.argv)}"]
        tail = self.stderr.rstrip().splitlines()[-_STDERR_TAIL_LINES:]
        lines.extend(f"  {line}" for line in tail)
        return "\n".join(lines)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,  # the name subprocess uses
    timeout: float | None = None,
    contain: bool = False,
) -> Completed:
    """Run `argv` to completion and capture its output.

    Output is utf-8 with undecodable bytes replaced; newlines are kept as written (no
    universal-newline translation, so file contents read through git survive a round trip).
    The child gets its own process group, so a timeout (or Ctrl-C) kills everything it
    started. stdin is closed unless `input` is given. It is judged by its exit: what it left
    holding its output is stopped shortly after it exited. With `contain` (a check), whatever
    it started is stopped once it exited, setsid or not.
    """
    args = tuple(argv)
    # Encoded first: text that cannot be encoded must not leave a started child behind.
    data = None if input is None else input.encode("utf-8")
    token = new_token()
    with _starting(args):
        popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=(dict(os.environ) if env is None else dict(env)) | {RUN_MARK: token},
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    if contain:
        with _CHECKS_LOCK:
            _CHECKS[popen.pid] = token
    try:
        stdout, stderr = _communicate(popen, args, data, timeout, token)
    finally:
        if contain:
            with _CHECKS_LOCK:
                _CHECKS.pop(popen.pid, None)
    if contain:
        _stop_leftovers(popen.pid, token)
    completed = Completed(argv=args, returncode=popen.returncode, stdout=stdout, stderr=stderr)
    if check and completed.returncode != 0:
        raise ProcessError.from_completed(completed)
    return completed


def new_token() -> str:
    """A value of CE_RUN_TOKEN no other child of any `ce` process has."""
    return f"{os.getpid()}-{next(_TOKENS)}-{time.time_ns()}"


def _communicate(
    popen: subprocess.Popen[bytes],
    args: tuple[str, ...],
    data: bytes | None,
    timeout: float | None,
    token: str,
) -> tuple[str, str]:
    deadline = None if timeout is None else time.monotonic() + timeout
    exited: float | None = None  # when the leader was first seen gone with its pipes open
    while True:
        left = _STEP_SECONDS if deadline is None else deadline - time.monotonic()
        try:
            stdout, stderr = popen.communicate(data, timeout=max(0.0, min(_STEP_SECONDS, left)))
            return _decode(stdout), _decode(stderr)
        except subprocess.TimeoutExpired as partial:
            data = None  # Popen keeps writing what it was given; passing it again is an error
            now = time.monotonic()
            if popen.poll() is not None:
                exited = now if exited is None else exited
                if now - exited >= _EXITED_DRAIN_SECONDS:
                    _stop_leftovers(popen.pid, token)
                    return _drained(popen, partial)
            elif deadline is not None and now >= deadline:
                stdout_b, stderr_b = _kill_and_drain(popen, token)
                raise ProcessError(
                    argv=args,
                    returncode=popen.returncode,
                    stdout=_decode(stdout_b),
                    stderr=_decode(stderr_b),
                    reason=f"timed out after {timeout:g}s and was killed",
                ) from None
        except BaseException:
            _kill_and_drain(popen, token)
            raise


def _drained(popen: subprocess.Popen[bytes], partial: subprocess.TimeoutExpired) -> tuple[str, str]:
    """The output of an exited leader whose pipes were held by what it left behind (stopped
    now): the rest of it, or what was read so far when a holder escaped us."""
    try:
        stdout, stderr = popen.communicate(timeout=_DRAIN_SECONDS)
    except subprocess.TimeoutExpired as late:
        stdout, stderr = _as_bytes(late.output or partial.output), _as_bytes(late.stderr)
        for pipe in (popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()
    return _decode(stdout), _decode(stderr)


def _as_bytes(data: object) -> bytes:
    return data if isinstance(data, bytes) else b""


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _kill_and_drain(popen: subprocess.Popen[bytes], token: str) -> tuple[bytes, bytes]:
    _signal_group(popen.pid, signal.SIGKILL)
    _stop_tagged(token, 0.0, popen.pid)
    try:
        stdout, stderr = popen.communicate(timeout=_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        # A member that left the group still holds our pipes: give up on its output.
        popen.kill()
        popen.wait()
        stdout, stderr = b"", b""
    _reap_group(popen.pid)
    return stdout or b"", stderr or b""


class OutputFilter(Protocol):
    """Rewrites a child's output on its way to the log (`ce.secrets.LogFilter` masks secrets)."""

    def feed(self, data: bytes) -> bytes: ...

    def end(self) -> bytes: ...


class Child:
    """A supervised child: the leader of its own process group."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        log_path: Path,
        copier: threading.Thread | None = None,
        token: str = "",
    ) -> None:
        self._popen = popen
        self.log_path = log_path
        self.token = token  # CE_RUN_MARK: what it started, even outside its group
        self._copier = copier  # filtering the output into the log; done once the pipe closes

    def drain(self, timeout: float = _DRAIN_SECONDS) -> None:
        """Wait until the filtered output is in the log (a member that left the group and
        keeps the pipe open is given up on after `timeout`)."""
        if self._copier is not None:
            self._copier.join(timeout)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def pgid(self) -> int:
        # A session leader's group id is its pid; recorded so a later run can kill the group.
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def poll(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """The leader's exit code, or None if it still runs after `timeout` seconds."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def __repr__(self) -> str:
        return f"Child(pid={self.pid}, returncode={self.returncode}, log={self.log_path})"


def spawn_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    output_filter: OutputFilter | None = None,
) -> Child:
    """Start `argv` in a new session with stdin closed, appending its output to `log_path`.

    With `output_filter`, the output goes through a pipe and a thread that filters it into
    the log, so what the filter removes never reaches the disk.
    Call `stop_group` when done with it, even after the leader exited: that also kills
    whatever the leader left running in its group.
    """
    _become_subreaper()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = tuple(argv)
    token = new_token()
    env = {**env, RUN_MARK: token}
    with log_path.open("ab") as log, _starting(args):
        if output_filter is None:
            return Child(_popen_group(args, cwd, env, log.fileno()), log_path, token=token)
        read_end, write_end = os.pipe()  # not inheritable: only this child holds the write end
        try:
            popen = _popen_group(args, cwd, env, write_end)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
    copier = threading.Thread(
        target=_copy_filtered,
        args=(read_end, log_path, output_filter),
        name=f"ce-log-{popen.pid}",
        daemon=True,
    )
    copier.start()
    return Child(popen, log_path, copier, token)


def _popen_group(
    args: tuple[str, ...], cwd: Path, env: Mapping[str, str], stdout: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _copy_filtered(read_end: int, log_path: Path, output_filter: OutputFilter) -> None:
    with open(read_end, "rb", buffering=0, closefd=True) as pipe, log_path.open("ab") as log:
        while data := pipe.read(65536):
            log.write(output_filter.feed(data))
            log.flush()  # the monitor times progress by the log's size
        log.write(output_filter.end())


def stop_group(child: Child, grace: float = 5.0) -> int | None:
    """Stop the child's whole group: SIGTERM, up to `grace` seconds, then SIGKILL.

    Reaps the leader and the members orphaned to us. Idempotent. Returns the leader's exit
    code (None only if it survived SIGKILL, e.g. stuck in the kernel).
    """
    _stop(child.pgid, grace, child)
    if child.token:
        _stop_tagged(child.token, grace, child.pid)  # what left the group with setsid
    child.drain()
    return child.returncode


def running_checks() -> int:
    with _CHECKS_LOCK:
        return len(_CHECKS)


def stop_checks(grace: float) -> None:
    """Stop every contained command running now (the batch is interrupted): SIGTERM to each
    group and what it started, `grace`, then SIGKILL. Their `run` calls return at once and
    reap them; nothing is reaped here, so no exit status is taken from them."""
    deadline = time.monotonic() + grace
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with _CHECKS_LOCK:
            running = list(_CHECKS.items())
        for pgid, token in running:
            _signal_group(pgid, signum)
            for pid in tagged(token):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
        while running_checks() and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
        if not running_checks():
            return


def kill_pgid(pgid: int, grace: float) -> None:
    """Stop a group recorded by an earlier run of `ce` (not our child): SIGTERM, then SIGKILL.

    The caller vouches that `pgid` is still that group: once it died its number may be reused.
    """
    _stop(pgid, grace, None)


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies, on Linux, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to someone else
    return _has_live_member(pgid)


def group_working_in(pgid: int, directory: Path) -> bool:
    """Whether a live member of group `pgid` has its working directory in `directory`.

    How a resumed run tells an agent it launched earlier from an unrelated process that got the
    same group number since (after a reboot, say): it only stops groups working in its
    worktrees. Linux (/proc) only; elsewhere: False, so nothing is ever stopped by mistake.
    """
    proc = Path("/proc")
    root = directory.resolve()
    if not (proc / "self" / "stat").exists():
        return False
    for entry in proc.iterdir():
        if entry.name.isdigit() and _stat_says_live_member(entry / "stat", pgid):
            try:
                cwd = (entry / "cwd").readlink()
            except OSError:
                continue
            if cwd == root or root in cwd.parents:
                return True
    return False


@contextlib.contextmanager
def _starting(args: tuple[str, ...]) -> Iterator[None]:
    """Turn a failure to start (missing binary, bad cwd) into a ProcessError."""
    try:
        yield
    except OSError as exc:
        code = _EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else _EXIT_CANNOT_EXECUTE
        raise ProcessError(
            argv=args, returncode=code, stderr=str(exc), reason="could not start"
        ) from exc


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    # PermissionError: macOS says so for a group of zombies.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _stop(pgid: int, grace: float, leader: Child | None) -> None:
    _signal_group(pgid, signal.SIGTERM)
    if not _wait_gone(pgid, time.monotonic() + grace, leader):
        _signal_group(pgid, signal.SIGKILL)
        _wait_gone(pgid, time.monotonic() + _KILL_WAIT_SECONDS, leader)


def _wait_gone(pgid: int, deadline: float, leader: Child | None) -> bool:
    """Reap what we may until no process of the group runs, or the deadline passes."""
    while True:
        if leader is None or leader.poll() is not None:
            # Only once Popen has reaped the leader: waitpid(-pgid) must not steal its status.
            _reap_group(pgid)
            if not group_alive(pgid):
                _reap_group(pgid)  # members that became zombies since the first pass
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def _stop_leftovers(pgid: int, token: str) -> None:
    """What an exited command left running: its group, and what escaped it."""
    _signal_group(pgid, signal.SIGKILL)
    _stop_tagged(token, 0.0, pgid)
    _reap_group(pgid)


def _stop_tagged(token: str, grace: float, leader: int) -> None:
    """Stop every process carrying CE_RUN_TOKEN=`token`: SIGTERM, `grace`, SIGKILL; reap
    those re-parented to us (we are a subreaper). Not the `leader`: its Popen reaps it."""
    pids = [pid for pid in tagged(token) if pid != leader]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        deadline = time.monotonic() + (grace if signum == signal.SIGTERM else _KILL_WAIT_SECONDS)
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if not _reaped_or_dead(pid)]
            time.sleep(_POLL_SECONDS if pids else 0)
        if not pids:
            return


def tagged(token: str) -> list[int]:
    """The live processes whose environment carries CE_RUN_TOKEN=`token` (Linux /proc)."""
    needle = f"\0{RUN_MARK}={token}\0".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/environ").exists() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if needle in b"\0" + environ:
            found.append(int(entry.name))
    return found


def _reaped_or_dead(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    return not _stat_says_live(Path(f"/proc/{pid}/stat"))


def _reap_group(pgid: int) -> None:
    """Collect the exit status of every dead member of `pgid` that is our child."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


_STAT_FIELDS = re.compile(r"\) (?P<state>\S) -?\d+ (?P<pgrp>-?\d+) ")


def _has_live_member(pgid: int) -> bool:
    """Whether a member of `pgid` is not a zombie (Linux /proc; elsewhere: assume so)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit() and _stat_says_live_member(entry / "stat", pgid):
            return True
    return False


def _stat_says_live_member(stat: Path, pgid: int) -> bool:
    match = _stat_fields(stat)
    return match is not None and int(match["pgrp"]) == pgid and match["state"] not in "ZX"


def _stat_says_live(stat: Path) -> bool:
    match = _stat_fields(stat)
    return match is not None and match["state"] not in "ZX"


def _stat_fields(stat: Path) -> re.Match[str] | None:
    try:
        text = stat.read_text(errors="replace")
    except OSError:
        return None  # exited while we looked
    # The command name may contain ") ", so parse from the last one.
    return _STAT_FIELDS.search(text, text.rfind(")"))


@functools.cache
def _become_subreaper() -> None:
    """Have orphaned descendants re-parented to us (Linux), so `stop_group` can reap them."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # best effort: a failure only costs zombies
