"""The signals that stop a run: Ctrl-C, SIGTERM and SIGHUP (the terminal was closed).

Each stops a run the same way: agents and checks stopped, their work and the batch state saved,
resumable with --resume. A second one while stopping exits at once (130); --resume still works.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_INTERRUPTED = 130


def _at_once(signum: int, _frame: FrameType | None) -> None:
    os._exit(EXIT_INTERRUPTED)


def _stop(signum: int, _frame: FrameType | None) -> None:
    # Armed before raising: a second signal, even one that lands while the first is being
    # handled, ends the process instead of interrupting the stopping.
    for each in STOP_SIGNALS:
        signal.signal(each, _at_once)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    previous = {each: signal.signal(each, _stop) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
