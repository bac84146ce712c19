"""Fault injection for the crash tests, off unless the environment asks for it.

`CE_TEST_KILL_AT=k` kills after the k-th journal write (`state.Journal`); `CE_TEST_KILL_POINT`
names a point between two journal writes that no write marks (the advance's index lock, say)
and kills the process the first time it gets there.
"""

from __future__ import annotations

import os
import signal


def kill_point(name: str) -> None:
    """SIGKILL this process here when `CE_TEST_KILL_POINT` is `name`."""
    if os.environ.get("CE_TEST_KILL_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
