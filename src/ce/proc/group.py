"""A supervised child: `spawn_group` starts it as the leader of a new session with its output
copied (filtered) into a log, `stop_group` ends its whole group and what escaped it."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from ce.proc.procfs import RUN_MARK, new_token
from ce.proc.result import starting
from ce.proc.stopping import DRAIN_SECONDS, become_subreaper, stop_pgid, stop_tagged


class OutputFilter(Protocol):
    """Rewrites a child's output on its way to the log (`ce.secrets.LogFilter` masks secrets)."""

    def feed(self, data: bytes) -> bytes: ...

    def end(self) -> bytes: ...


class Supervised(Protocol):
    """What watching and stopping a launch needs, wherever it runs (DESIGN.md § Backends): a
    `Child` here, or a launch on another machine."""

    @property
    def pid(self) -> int: ...

    @property
    def pgid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...

    def stop(self, grace: float = 5.0) -> int | None: ...


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

    def drain(self, timeout: float = DRAIN_SECONDS) -> None:
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

    def stop(self, grace: float = 5.0) -> int | None:
        return stop_group(self, grace)

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
    become_subreaper()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args = tuple(argv)
    token = new_token()
    env = {**env, RUN_MARK: token}
    with log_path.open("ab") as log, starting(args):
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
    stop_pgid(child.pgid, grace, child)
    if child.token:
        stop_tagged(child.token, grace, child.pid)  # what left the group with setsid
    child.drain()
    return child.returncode
