"""One orchestrator per repository: an OS lock that dies with its process (flock)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ce.core.errors import CeError, NextStep, Step

LOCK_NAME = "ce-batch.lock"


@contextlib.contextmanager
def batch_lock(common_dir: Path, batch_id: str) -> Iterator[None]:
    """Hold the repository's batch lock; a second orchestrator gets a clear CeError.

    The kernel drops a flock when its process dies, SIGKILL included: no stale lock is possible.
    The file's content only says who holds it, for the message.
    """
    path = common_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CeError(
                _held_message(path), next_step=NextStep(step=Step.WAIT_OR_RESUME)
            ) from None
        os.ftruncate(fd, 0)
        holder = {"batch_id": batch_id, "pid": os.getpid(), "since": time.time()}
        os.write(fd, json.dumps(holder).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _held_message(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"])))
        who = f"batch {holder['batch_id']} (pid {holder['pid']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        who = "another ce process"
    return f"{who} is already running in this repository; one batch runs at a time per repository."
