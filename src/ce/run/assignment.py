"""What a PRP's worker is given: its assignment, and what every worker of a batch shares."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

from ce.core.events import Listener
from ce.prp.model import Prp
from ce.run.backends.base import Backend
from ce.run.gate import LaunchGate
from ce.run.ledger import Ledger
from ce.run.load import BatchContext
from ce.run.monitor import Monitor
from ce.run.state import Journal


def resume_point(prp: Prp, done: set[int]) -> int | None:
    """The first phase not yet committed, in document order; None when all are done."""
    for phase in prp.phases:
        if phase.number not in done:
            return phase.number
    return None


@dataclass(frozen=True, kw_only=True)
class Crewmates:
    """What every worker of a batch shares."""

    ctx: BatchContext
    monitor: Monitor
    journal: Journal
    emit: Listener
    ledger: Ledger
    stopping: threading.Event  # set when the batch is interrupted
    gate: LaunchGate  # staggering, rate limits
    today: date
    backend: Backend  # where the launches run


@dataclass(frozen=True, kw_only=True)
class Assignment:
    prp: Prp
    stage: int
    model: str
    may_exist: bool  # resuming: its branch and worktree may be there already
    resolve_with: str | None = None  # the `agent` conflict policy: merge this and resolve
    left_at: str | None = None  # resuming: the head ce judged last (`prp_worktree.adopted`)
