"""What the engine reports while it works. The UI renders these and imports only these types."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace


class PrpState(enum.Enum):
    PENDING = "pending"
    PREPARING = "preparing"  # worktree being created
    RUNNING = "running"  # the executor is working
    VALIDATING = "validating"
    VALIDATED = "validated"  # waiting for its turn in the merge lane
    MERGING = "merging"
    MERGED = "merged"
    PARTIAL = "partial"  # some phases done, then a failure (kept for debugging)
    FAILED = "failed"
    CONFLICT = "conflict"  # its merge conflicts with the target
    SKIPPED = "skipped"  # a dependency did not merge, or the batch stopped first

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def ok(self) -> bool:
        return self is PrpState.MERGED


_FINISHED = frozenset(
    {PrpState.MERGED, PrpState.PARTIAL, PrpState.FAILED, PrpState.CONFLICT, PrpState.SKIPPED}
)


class NoticeLevel(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LaneStep(enum.StrEnum):
    """A step of one merge in the lane."""

    MERGE_TREE = "merge-tree"
    CONFLICT = "conflict"
    VALIDATE = "validate"
    ADVANCE = "advance"
    MERGED = "merged"


class StopKind(enum.Enum):
    """Why a launch of an executor ended without success."""

    STALLED = "stalled"  # no progress for `stalled_after`: stopped by the monitor
    TIMED_OUT = "timed out"  # past --timeout: stopped by the monitor
    RATE_LIMITED = "rate limited"  # the agent said "later" (with a reset time)
    FAILED = "failed"  # the executor reported an error or exited non-zero
    INTERRUPTED = "interrupted"  # the batch is stopping


class Health(enum.Enum):
    HEALTHY = "HEALTHY"
    WARNING = "WARNING"
    STALLED = "STALLED"


UNSTAMPED = -1.0  # not stamped yet: the engine's listener stamps it from its clock


@dataclass(frozen=True, kw_only=True)
class Event:
    at: float = UNSTAMPED


def stamping(listener: Listener, clock: Callable[[], float]) -> Listener:
    """`listener`, with every event that carries no time stamped from `clock` first."""

    def stamp(event: Event) -> None:
        listener(event if event.at != UNSTAMPED else replace(event, at=clock()))

    return stamp


@dataclass(frozen=True, kw_only=True)
class PrpInfo:
    id: str
    title: str
    stage: int
    model: str
    phases: int
    branch: str
    worktree: str


@dataclass(frozen=True, kw_only=True)
class BatchStarted(Event):
    batch_id: str
    executor: str
    stages: tuple[tuple[str, ...], ...]
    prps: tuple[PrpInfo, ...]
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class StageStarted(Event):
    stage: int
    prps: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StageFinished(Event):
    stage: int


@dataclass(frozen=True, kw_only=True)
class PrpChanged(Event):
    prp: str
    state: PrpState
    message: str = ""
    cost_usd: float | None = None  # what its agents spent so far, once known
    earlier: bool = False  # a resumed batch's PRP merged by an earlier run: no work in this one


@dataclass(frozen=True, kw_only=True)
class PhaseCommitted(Event):
    prp: str
    phase: int
    total: int
    title: str


@dataclass(frozen=True, kw_only=True)
class HealthChanged(Event):
    prp: str
    health: Health
    idle_seconds: float


@dataclass(frozen=True, kw_only=True)
class MergeStep(Event):
    prp: str
    step: LaneStep
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    level: NoticeLevel
    message: str
    prp: str | None = None


@dataclass(frozen=True, kw_only=True)
class BudgetReached(Event):
    """The batch budget is spent: no new PRP starts (those running finish)."""

    budget_usd: float
    spent_usd: float


@dataclass(frozen=True, kw_only=True)
class BatchFinished(Event):
    status: str  # "completed", "failed", "paused", "interrupted"


Listener = Callable[[Event], None]
