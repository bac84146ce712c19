"""The contained commands (checks) running now, so that Ctrl-C can stop them all at once, and
a caller can stop the ones it started (a speculative check whose merge was discarded).

This module owns the registry: `command.run(contain=True)` enters and leaves it, the
interrupted batch stops what it holds, a `CheckScope` what was run within it."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

from ce.proc.procfs import tagged
from ce.proc.stopping import POLL_SECONDS, signal_group, signal_pids

# The contained commands (checks) running now, group → token: stopped all at once on Ctrl-C.
_CHECKS: dict[int, str] = {}
_CHECKS_LOCK = threading.Lock()


_CURRENT = threading.local()  # the CheckScope the calling thread runs its checks within, if any


class CheckScope:
    """The checks run within it, on any thread: `stop` ends those running and any started
    after it (they are stopped as they start), so a discarded piece of work frees its place
    now rather than when its checks are done."""

    def __init__(self) -> None:
        self.stopped = False
        self._groups: dict[int, str] = {}  # pgid → token, under _CHECKS_LOCK

    def stop(self, grace: float) -> None:
        """SIGTERM to each running group now, SIGKILL to what is left after `grace` (from a
        timer: the caller does not wait)."""
        with _CHECKS_LOCK:
            self.stopped = True
            running = list(self._groups.items())
        _signal_all(running, signal.SIGTERM)
        timer = threading.Timer(grace, self._kill)
        timer.daemon = True
        timer.start()

    def _kill(self) -> None:
        with _CHECKS_LOCK:
            running = list(self._groups.items())
        _signal_all(running, signal.SIGKILL)


@contextlib.contextmanager
def checks_within(scope: CheckScope) -> Iterator[CheckScope]:
    """Checks this thread runs meanwhile belong to `scope`."""
    _CURRENT.scope = scope
    try:
        yield scope
    finally:
        _CURRENT.scope = None


def register(pgid: int, token: str) -> None:
    scope: CheckScope | None = getattr(_CURRENT, "scope", None)
    with _CHECKS_LOCK:
        _CHECKS[pgid] = token
        if scope is not None:
            scope._groups[pgid] = token
        stopped = scope is not None and scope.stopped
    if stopped:  # started after its scope was stopped: ended at once
        _signal_all([(pgid, token)], signal.SIGKILL)


def unregister(pgid: int) -> None:
    scope: CheckScope | None = getattr(_CURRENT, "scope", None)
    with _CHECKS_LOCK:
        _CHECKS.pop(pgid, None)
        if scope is not None:
            scope._groups.pop(pgid, None)


def _signal_all(groups: list[tuple[int, str]], signum: signal.Signals) -> None:
    for pgid, token in groups:
        signal_group(pgid, signum)
        signal_pids(tagged(token), signum)


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
        _signal_all(running, signum)
        while running_checks() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if not running_checks():
            return
