"""The live board's state: a pure fold of engine events into `BoardState`.

`BoardState.apply(event)` returns a new state and never mutates the old one, so a drawing thread
can render whatever state it last read while the engine's threads keep folding events in. The
picture is `ce.ui.render`, the timeline the reports draw is `ce.ui.timeline`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ce.core.events import (
    BatchFinished,
    BatchStarted,
    Event,
    Health,
    HealthChanged,
    MergeStep,
    Notice,
    PhaseCommitted,
    PrpChanged,
    PrpState,
    StageFinished,
    StageStarted,
)
from ce.core.events import LaneStep as Step
from ce.core.events import NoticeLevel as Level
from ce.core.outcome import Totals

_NOT_WORKING = frozenset({PrpState.PENDING, PrpState.SKIPPED})
# Validation starts only once every phase has its checkpoint commit.
_ALL_PHASES_DONE = frozenset(
    {PrpState.VALIDATING, PrpState.VALIDATED, PrpState.MERGING, PrpState.MERGED}
)
_LANE_DONE = frozenset({Step.MERGED, Step.CONFLICT})


@dataclass(frozen=True, kw_only=True)
class Transition:
    at: float
    state: PrpState
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class PhaseMark:
    at: float
    phase: int
    total: int
    title: str


@dataclass(frozen=True, kw_only=True)
class RowTimes:
    started_at: float | None = None
    finished_at: float | None = None
    last_commit_at: float | None = None
    merged_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class RowHistory:
    """What the timeline is cut from: every state change and checkpoint commit, in order."""

    transitions: tuple[Transition, ...] = ()
    commits: tuple[PhaseMark, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PrpRow:
    id: str
    title: str
    stage: int
    model: str
    phases_total: int
    state: PrpState = PrpState.PENDING
    message: str = ""
    phases_done: int = 0
    health: Health = Health.HEALTHY
    cost_usd: float | None = None
    times: RowTimes = RowTimes()
    history: RowHistory = RowHistory()

    @property
    def started_at(self) -> float | None:
        return self.times.started_at

    @property
    def finished_at(self) -> float | None:
        return self.times.finished_at

    @property
    def last_commit_at(self) -> float | None:
        return self.times.last_commit_at

    @property
    def merged_at(self) -> float | None:
        return self.times.merged_at

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return self.history.transitions

    @property
    def commits(self) -> tuple[PhaseMark, ...]:
        return self.history.commits


@dataclass(frozen=True, kw_only=True)
class LaneStep:
    at: float
    prp: str
    step: Step
    detail: str = ""

    @property
    def busy(self) -> bool:
        return self.step not in _LANE_DONE


@dataclass(frozen=True, kw_only=True)
class StageSpan:
    stage: int
    started_at: float
    finished_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class NoticeLine:
    at: float
    level: Level
    message: str
    prp: str | None = None


@dataclass(frozen=True, kw_only=True)
class BatchSpan:
    started_at: float | None = None
    finished_at: float | None = None
    status: str | None = None  # set by BatchFinished: completed, failed, paused, interrupted


@dataclass(frozen=True, kw_only=True)
class BoardState:
    batch_id: str = ""
    executor: str = ""
    resumed: bool = False
    stage_count: int = 0
    current_stage: int | None = None
    span: BatchSpan = BatchSpan()
    rows: tuple[PrpRow, ...] = ()
    stages: tuple[StageSpan, ...] = ()
    lane: LaneStep | None = None
    merges: tuple[LaneStep, ...] = ()  # every "merged" and "conflict" step, for the timeline
    notices: tuple[NoticeLine, ...] = ()

    def apply(self, event: Event) -> BoardState:
        return _with_cost(self._apply(event), event)

    def _apply(self, event: Event) -> BoardState:
        match event:
            case BatchStarted():
                return _batch_started(self, event)
            case StageStarted():
                span = StageSpan(stage=event.stage, started_at=event.at)
                return replace(self, current_stage=event.stage, stages=(*self.stages, span))
            case StageFinished():
                return replace(self, stages=tuple(_finish_span(s, event) for s in self.stages))
            case PrpChanged():
                return _with_row(self, event.prp, lambda row: _changed(row, event))
            case PhaseCommitted():
                return _with_row(self, event.prp, lambda row: _committed(row, event))
            case HealthChanged():
                return _with_row(self, event.prp, lambda row: replace(row, health=event.health))
            case MergeStep():
                return _merge_step(self, event)
            case Notice():
                line = NoticeLine(
                    at=event.at, level=event.level, message=event.message, prp=event.prp
                )
                return replace(self, notices=(*self.notices, line))
            case BatchFinished():
                ended = replace(self.span, finished_at=event.at, status=event.status)
                return replace(self, span=ended)
        return self

    def row(self, prp_id: str) -> PrpRow | None:
        return next((row for row in self.rows if row.id == prp_id), None)

    @property
    def started_at(self) -> float | None:
        return self.span.started_at

    @property
    def finished_at(self) -> float | None:
        return self.span.finished_at

    @property
    def status(self) -> str | None:
        return self.span.status

    @property
    def totals(self) -> Totals:
        """The rows counted by outcome exactly as the summary counts its PRPs."""
        return Totals.of(row.state for row in self.rows)

    @property
    def total_cost(self) -> float | None:
        costs = [row.cost_usd for row in self.rows if row.cost_usd is not None]
        return sum(costs) if costs else None


def fold(events: Iterable[Event], state: BoardState | None = None) -> BoardState:
    state = state or BoardState()
    for event in events:
        state = state.apply(event)
    return state


def _batch_started(state: BoardState, event: BatchStarted) -> BoardState:
    rows = tuple(
        PrpRow(id=p.id, title=p.title, stage=p.stage, model=p.model, phases_total=p.phases)
        for p in event.prps
    )
    return replace(
        state,
        batch_id=event.batch_id,
        executor=event.executor,
        resumed=event.resumed,
        stage_count=len(event.stages),
        span=replace(state.span, started_at=event.at),
        rows=rows,
    )


def _finish_span(span: StageSpan, event: StageFinished) -> StageSpan:
    if span.stage != event.stage or span.finished_at is not None:
        return span
    return replace(span, finished_at=event.at)


def _with_row(state: BoardState, prp_id: str, change: Callable[[PrpRow], PrpRow]) -> BoardState:
    if state.row(prp_id) is None:  # an event about a PRP the batch did not announce: show it
        stray = PrpRow(id=prp_id, title=prp_id, stage=0, model="", phases_total=0)
        state = replace(state, rows=(*state.rows, stray))
    rows = tuple(change(row) if row.id == prp_id else row for row in state.rows)
    return replace(state, rows=rows)


def _changed(row: PrpRow, event: PrpChanged) -> PrpRow:
    state = event.state
    started = row.started_at
    if started is None and state not in _NOT_WORKING and not _earlier(event):
        started = event.at
    transition = Transition(at=event.at, state=state, message=event.message)
    return replace(
        row,
        state=state,
        message=event.message,
        phases_done=row.phases_total if state in _ALL_PHASES_DONE else row.phases_done,
        times=replace(
            row.times, started_at=started, finished_at=event.at if state.finished else None
        ),
        # A (re)launched executor starts healthy: the monitor only reports changes.
        health=Health.HEALTHY if state is PrpState.RUNNING else row.health,
        history=replace(row.history, transitions=(*row.transitions, transition)),
    )


def _earlier(event: PrpChanged) -> bool:
    """A resumed batch announces PRPs merged by an earlier run: they did no work in this one."""
    return event.earlier


def _with_cost(state: BoardState, event: Event) -> BoardState:
    """Agents report what they spent when they end: any event about a PRP may carry `cost_usd`."""
    cost, prp_id = getattr(event, "cost_usd", None), getattr(event, "prp", None)
    if not isinstance(cost, int | float) or not isinstance(prp_id, str):
        return state
    return _with_row(state, prp_id, lambda row: replace(row, cost_usd=float(cost)))


def _committed(row: PrpRow, event: PhaseCommitted) -> PrpRow:
    mark = PhaseMark(at=event.at, phase=event.phase, total=event.total, title=event.title)
    return replace(
        row,
        phases_done=max(row.phases_done, event.phase),
        phases_total=event.total or row.phases_total,
        times=replace(row.times, last_commit_at=event.at),
        history=replace(row.history, commits=(*row.commits, mark)),
    )


def _merge_step(state: BoardState, event: MergeStep) -> BoardState:
    step = LaneStep(at=event.at, prp=event.prp, step=event.step, detail=event.detail)
    if step.busy:
        return replace(state, lane=step)
    state = replace(state, lane=step, merges=(*state.merges, step))
    if event.step is Step.MERGED:
        return _with_row(state, event.prp, _merged_at(event.at))
    return state


def _merged_at(at: float) -> Callable[[PrpRow], PrpRow]:
    return lambda row: replace(row, times=replace(row.times, merged_at=at))


class Board:
    """A thread-safe listener keeping the latest `BoardState` (the engine calls it from threads)."""

    def __init__(self, state: BoardState | None = None) -> None:
        self._state = state or BoardState()
        self._lock = threading.Lock()

    @property
    def state(self) -> BoardState:
        return self._state  # immutable: a reader needs no lock

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._state = self._state.apply(event)
