"""Fault injection for the crash tests, off unless the environment asks for it.

`CE_TEST_KILL_AT=k` kills after the k-th journal write (`state.Journal`);
`CE_TEST_KILL_AFTER=kind:PRP-ID[:n]` kills after the n-th (default first) journal entry of that
kind (intent or fact) for that PRP, whatever order the threads wrote the others in;
`CE_TEST_KILL_POINT` names a point between two journal writes that no write marks (the advance's
index lock, say) and kills the process the first time it gets there.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Any


def kill_point(name: str) -> None:
    """SIGKILL this process here when `CE_TEST_KILL_POINT` is `name`."""
    if os.environ.get("CE_TEST_KILL_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class KillAfter:
    """The `CE_TEST_KILL_AFTER` rule of one journal: counts the entries it names."""

    def __init__(self, spec: str) -> None:
        kind, _, rest = spec.partition(":")
        prp, _, nth = rest.partition(":")
        self.kind, self.prp = kind, prp
        self.nth = int(nth) if nth.isdigit() else 1
        self.seen = 0

    @classmethod
    def from_environment(cls) -> KillAfter | None:
        spec = os.environ.get("CE_TEST_KILL_AFTER", "")
        return cls(spec) if ":" in spec else None

    def written(self, entry: Mapping[str, Any]) -> None:
        """Called after each journal write (under the journal's lock)."""
        kind = entry.get("intent", entry.get("fact"))
        if kind == self.kind and entry.get("prp") == self.prp:
            self.seen += 1
            if self.seen == self.nth:
                os.kill(os.getpid(), signal.SIGKILL)
