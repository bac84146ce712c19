"""Running a command to completion: `run` captures its output, judges it by its exit, and
stops what it left holding its pipes (with `contain`, whatever it started)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ce.proc import checks
from ce.proc.procfs import RUN_MARK, new_token
from ce.proc.result import Completed, ProcessError, starting
from ce.proc.stopping import DRAIN_SECONDS, reap_group, signal_group, stop_leftovers, stop_tagged

_EXITED_DRAIN_SECONDS = 2.0  # after the leader exited, how long its pipes may stay open
_STEP_SECONDS = 0.1  # how often `run` looks whether the leader exited while its pipes are open


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,  # the name subprocess uses
    timeout: float | None = None,
    contain: bool = False,
    executable: str | None = None,
) -> Completed:
    """Run `argv` to completion and capture its output (`executable`: the program's path,
    when the caller knows it; `argv[0]` is still what the program and messages see).

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
    with starting(args):
        popen = subprocess.Popen(
            args,
            executable=executable,
            cwd=cwd,
            env=(dict(os.environ) if env is None else dict(env)) | {RUN_MARK: token},
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    if contain:
        checks.register(popen.pid, token)
    writer = None if data is None else _feed(popen, data)
    try:
        stdout, stderr = _communicate(popen, args, timeout, token)
    finally:
        if writer is not None:
            writer.join(timeout=DRAIN_SECONDS)
        if contain:
            checks.unregister(popen.pid)
    if contain:
        stop_leftovers(popen.pid, token)
    completed = Completed(argv=args, returncode=popen.returncode, stdout=stdout, stderr=stderr)
    if check and completed.returncode != 0:
        raise ProcessError.from_completed(completed)
    return completed


def _feed(popen: subprocess.Popen[bytes], data: bytes) -> threading.Thread:
    """Write `data` to the child's stdin from a thread of its own, then close it. `communicate`
    cannot be trusted with it: called again after a timeout, it never writes the rest (what did
    not fit in the pipe, or all of it when the first look ran out before its first write)."""
    pipe = popen.stdin
    popen.stdin = None  # communicate must neither write nor close it
    assert pipe is not None

    def write() -> None:
        # A child that exits or closes its stdin without reading it all is no error.
        with contextlib.suppress(OSError, ValueError):
            pipe.write(data)
        with contextlib.suppress(OSError):
            pipe.close()

    writer = threading.Thread(target=write, name="ce-stdin", daemon=True)
    writer.start()
    return writer


def _communicate(
    popen: subprocess.Popen[bytes],
    args: tuple[str, ...],
    timeout: float | None,
    token: str,
) -> tuple[str, str]:
    deadline = None if timeout is None else time.monotonic() + timeout
    exited: float | None = None  # when the leader was first seen gone with its pipes open
    while True:
        left = _STEP_SECONDS if deadline is None else deadline - time.monotonic()
        try:
            stdout, stderr = popen.communicate(timeout=max(0.0, min(_STEP_SECONDS, left)))
            return _decode(stdout), _decode(stderr)
        except subprocess.TimeoutExpired as partial:
            now = time.monotonic()
            if popen.poll() is not None:
                exited = now if exited is None else exited
                if now - exited >= _EXITED_DRAIN_SECONDS:
                    stop_leftovers(popen.pid, token)
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
        stdout, stderr = popen.communicate(timeout=DRAIN_SECONDS)
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
    signal_group(popen.pid, signal.SIGKILL)
    stop_tagged(token, 0.0, popen.pid)
    try:
        stdout, stderr = popen.communicate(timeout=DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        # A member that left the group still holds our pipes: give up on its output.
        popen.kill()
        popen.wait()
        stdout, stderr = b"", b""
    reap_group(popen.pid)
    return stdout or b"", stderr or b""
