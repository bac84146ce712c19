"""The contained commands (checks) running now, so that Ctrl-C can stop them all at once.

This module owns the registry: `command.run(contain=True)` enters and leaves it, the
interrupted batch stops what it holds."""

from __future__ import annotations

import signal
import threading
import time

from ce.proc.procfs import tagged
from ce.proc.stopping import POLL_SECONDS, signal_group, signal_pids

# The contained commands (checks) running now, group → token: stopped all at once on Ctrl-C.
_CHECKS: dict[int, str] = {}
_CHECKS_LOCK = threading.Lock()


def register(pgid: int, token: str) -> None:
    with _CHECKS_LOCK:
        _CHECKS[pgid] = token


def unregister(pgid: int) -> None:
    with _CHECKS_LOCK:
        _CHECKS.pop(pgid, None)


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
            signal_group(pgid, signum)
            signal_pids(tagged(token), signum)
        while running_checks() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if not running_checks():
            return
