"""The live board: a pure fold of engine events into `BoardState`, and a pure render of it.

`BoardState.apply(event)` returns a new state and never mutates the old one, so a drawing thread
can render whatever state it last read while the engine's threads keep folding events in.
`render(state, now, width)` is a function of its arguments only: tests pin the clock.
"""

from __future__ import annotations

import enum
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text

from ce.core.durations import format_duration
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

_ACTIVE = frozenset({PrpState.PREPARING, PrpState.RUNNING})
_NOT_WORKING = frozenset({PrpState.PENDING, PrpState.SKIPPED})
# Validation starts only once every phase has its checkpoint commit.
_ALL_PHASES_DONE = frozenset(
    {PrpState.VALIDATING, PrpState.VALIDATED, PrpState.MERGING, PrpState.MERGED}
)
_LANE_DONE = frozenset({Step.MERGED, Step.CONFLICT})
_NOTICES_SHOWN = 3
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


# -- the state --------------------------------------------------------------------------------


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
    started_at: float | None = None
    finished_at: float | None = None
    last_commit_at: float | None = None
    merged_at: float | None = None
    cost_usd: float | None = None
    transitions: tuple[Transition, ...] = ()
    commits: tuple[PhaseMark, ...] = ()


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
class BoardState:
    batch_id: str = ""
    executor: str = ""
    resumed: bool = False
    stage_count: int = 0
    current_stage: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    status: str | None = None  # set by BatchFinished: completed, failed, paused, interrupted
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
                return replace(self, finished_at=event.at, status=event.status)
        return self

    def row(self, prp_id: str) -> PrpRow | None:
        return next((row for row in self.rows if row.id == prp_id), None)

    def count(self, *states: PrpState) -> int:
        return sum(1 for row in self.rows if row.state in states)

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
        started_at=event.at,
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
    return replace(
        row,
        state=state,
        message=event.message,
        phases_done=row.phases_total if state in _ALL_PHASES_DONE else row.phases_done,
        started_at=started,
        finished_at=event.at if state.finished else None,
        # A (re)launched executor starts healthy: the monitor only reports changes.
        health=Health.HEALTHY if state is PrpState.RUNNING else row.health,
        transitions=(*row.transitions, Transition(at=event.at, state=state, message=event.message)),
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
        last_commit_at=event.at,
        commits=(*row.commits, mark),
    )


def _merge_step(state: BoardState, event: MergeStep) -> BoardState:
    step = LaneStep(at=event.at, prp=event.prp, step=event.step, detail=event.detail)
    if step.busy:
        return replace(state, lane=step)
    state = replace(state, lane=step, merges=(*state.merges, step))
    if event.step is Step.MERGED:
        return _with_row(state, event.prp, lambda row: replace(row, merged_at=event.at))
    return state


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


# -- the timeline (for reports) ---------------------------------------------------------------


class SegmentKind(enum.Enum):
    PREPARE = "prepare"  # worktree being created
    PHASE = "phase"  # executor work that ended in a checkpoint commit
    RUN = "run"  # executor work with no checkpoint (yet)
    VALIDATE = "validate"
    WAIT = "wait"  # validated, waiting for the merge lane
    MERGE = "merge"


_SEGMENT_OF = {
    PrpState.PREPARING: SegmentKind.PREPARE,
    PrpState.RUNNING: SegmentKind.RUN,
    PrpState.VALIDATING: SegmentKind.VALIDATE,
    PrpState.VALIDATED: SegmentKind.WAIT,
    PrpState.MERGING: SegmentKind.MERGE,
}


@dataclass(frozen=True, kw_only=True)
class Segment:
    start: float
    end: float
    kind: SegmentKind
    label: str


@dataclass(kw_only=True)
class _Open:
    start: float
    kind: SegmentKind


@dataclass(kw_only=True)
class _Walk:
    """Cutting one PRP's history into segments, event by event in time order."""

    total: int
    done: int = 0  # highest phase committed so far
    current: _Open | None = None
    out: list[Segment] = field(default_factory=list)

    def close(self, at: float, kind: SegmentKind | None = None, label: str = "") -> None:
        if self.current is not None and at > self.current.start:  # nothing to draw if not
            kind = kind or self.current.kind
            self.out.append(
                Segment(
                    start=self.current.start,
                    end=at,
                    kind=kind,
                    label=label or self._label(kind),
                )
            )
        self.current = None

    def _label(self, kind: SegmentKind) -> str:
        if kind is SegmentKind.RUN:
            return f"P{self.done + 1}" if self.done < self.total else "run"
        return str(kind.value)

    def transition(self, item: Transition) -> None:
        self.close(item.at)
        kind = _SEGMENT_OF.get(item.state)
        if kind is not None:
            self.current = _Open(start=item.at, kind=kind)

    def commit(self, item: PhaseMark) -> None:
        if self.current is not None and self.current.kind is SegmentKind.RUN:
            first = self.done + 1
            label = f"P{item.phase}" if first >= item.phase else f"P{first}–{item.phase}"
            self.close(item.at, SegmentKind.PHASE, label)
            self.current = _Open(start=item.at, kind=SegmentKind.RUN)
        self.done = max(self.done, item.phase)


def segments(row: PrpRow, end: float) -> tuple[Segment, ...]:
    """The PRP's bar: phases (split at checkpoint commits), validation, waiting and merging."""
    items: list[Transition | PhaseMark] = [*row.transitions, *row.commits]
    # Stable sort: at equal times a state change comes before the commit it reported.
    items.sort(key=lambda item: item.at)
    walk = _Walk(total=row.phases_total)
    for item in items:
        if isinstance(item, Transition):
            walk.transition(item)
        else:
            walk.commit(item)
    walk.close(row.finished_at or end)
    return tuple(walk.out)


def timeline(state: BoardState, *, end: float | None = None) -> dict[str, Any]:
    """The run as data: what the JSON report stores and the HTML report draws."""
    until = end or state.finished_at or state.started_at or 0.0
    return {
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "status": state.status,
        "stages": [
            {"stage": s.stage, "started_at": s.started_at, "finished_at": s.finished_at}
            for s in state.stages
        ],
        "merges": [
            {"prp": m.prp, "step": m.step, "detail": m.detail, "at": m.at} for m in state.merges
        ],
        "notices": [
            {"at": n.at, "level": n.level, "prp": n.prp, "message": n.message}
            for n in state.notices
        ],
        "prps": {row.id: _row_timeline(row, until) for row in state.rows},
    }


def _row_timeline(row: PrpRow, end: float) -> dict[str, Any]:
    return {
        "state": row.state.value,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "merged_at": row.merged_at,
        "transitions": [
            {"at": t.at, "state": t.state.value, "message": t.message} for t in row.transitions
        ],
        "phases": [
            {"at": c.at, "phase": c.phase, "total": c.total, "title": c.title} for c in row.commits
        ],
        "segments": [
            {"start": s.start, "end": s.end, "kind": s.kind.value, "label": s.label}
            for s in segments(row, end)
        ],
    }


# -- the picture ------------------------------------------------------------------------------


STATE_STYLE = {
    PrpState.PENDING: "dim",
    PrpState.PREPARING: "cyan",
    PrpState.RUNNING: "bold cyan",
    PrpState.VALIDATING: "blue",
    PrpState.VALIDATED: "magenta",
    PrpState.MERGING: "bold magenta",
    PrpState.MERGED: "green",
    PrpState.PARTIAL: "yellow",
    PrpState.FAILED: "bold red",
    PrpState.CONFLICT: "yellow",
    PrpState.SKIPPED: "dim",
}
_HEALTH_STYLE = {Health.HEALTHY: "green", Health.WARNING: "yellow", Health.STALLED: "bold red"}
_NOTICE_STYLE = {Level.INFO: "dim", Level.WARNING: "yellow", Level.ERROR: "bold red"}
_GAP = "  "
_TITLE_MIN = 10


@dataclass(frozen=True, kw_only=True)
class _Column:
    header: str
    width: int
    priority: int  # columns are dropped, highest number first, when the terminal is narrow
    cell: Callable[[PrpRow, float], Text]


def render(state: BoardState, now: float, width: int, height: int | None = None) -> list[Text]:
    """The board as lines of at most `width` cells; with `height`, at most that many lines."""
    width = max(width, 20)
    columns = _layout(state, width)
    tail = _lane_lines(state, now, width) + _notice_lines(state, width)
    room = None if height is None else max(height - 2 - len(tail), 1)
    rows = _visible(state.rows, room)
    lines = [_header(state, now, width), _column_header(columns, width)]
    lines += [_row_line(row, columns, now, width) for row in rows]
    hidden = len(state.rows) - len(rows)
    if hidden:
        lines.append(_fit(Text(f"… and {hidden} more PRP(s)", style="dim"), width))
    return lines + tail


def _layout(state: BoardState, width: int) -> list[_Column]:
    """The most useful columns that fit, in display order; the title takes what is left."""
    id_width = min(max([len(r.id) for r in state.rows] + [3]), 18)
    every = _columns(id_width)
    chosen: list[_Column] = []
    used = -len(_GAP)
    for column in sorted(every, key=lambda c: c.priority):
        if used + len(_GAP) + column.width <= width:
            chosen.append(column)
            used += len(_GAP) + column.width
    chosen.sort(key=every.index)
    return [replace(c, width=c.width + width - used) if c.header == "Title" else c for c in chosen]


def _columns(id_width: int) -> list[_Column]:
    return [
        _Column(header="PRP", width=id_width, priority=0, cell=lambda r, _: Text(r.id, "bold")),
        _Column(header="Stg", width=3, priority=6, cell=lambda r, _: Text(str(r.stage or ""))),
        _Column(header="Model", width=6, priority=8, cell=lambda r, _: Text(r.model, "dim")),
        _Column(header="State", width=10, priority=1, cell=_state_cell),
        _Column(header="Phase", width=5, priority=2, cell=_phase_cell),
        _Column(header="Commit", width=7, priority=7, cell=_commit_cell),
        _Column(header="Health", width=7, priority=3, cell=_health_cell),
        _Column(header="Elapsed", width=7, priority=4, cell=_elapsed_cell),
        _Column(header="Cost", width=7, priority=9, cell=_cost_cell),
        _Column(header="Title", width=_TITLE_MIN, priority=5, cell=_title_cell),
    ]


def _title_cell(row: PrpRow, _now: float) -> Text:
    return Text(clean(row.title))


def _state_cell(row: PrpRow, _now: float) -> Text:
    return Text(row.state.value, STATE_STYLE[row.state])


def _phase_cell(row: PrpRow, _now: float) -> Text:
    return Text(f"{row.phases_done}/{row.phases_total}" if row.phases_total else "-")


def _commit_cell(row: PrpRow, now: float) -> Text:
    if row.last_commit_at is None:
        return Text("-", "dim")
    return Text(_age(now - row.last_commit_at))


def _health_cell(row: PrpRow, _now: float) -> Text:
    if row.state not in _ACTIVE:
        return Text("")
    return Text(row.health.value, _HEALTH_STYLE[row.health])


def _elapsed_cell(row: PrpRow, now: float) -> Text:
    if row.started_at is None:
        return Text("-", "dim")
    return Text(format_duration((row.finished_at or now) - row.started_at))


def _cost_cell(row: PrpRow, _now: float) -> Text:
    return Text("-", "dim") if row.cost_usd is None else Text(f"${row.cost_usd:.2f}")


def _age(seconds: float) -> str:
    return f"{format_duration(max(seconds, 0.0))} ago"  # as `ce status` says it


def _header(state: BoardState, now: float, width: int) -> Text:
    parts = [Text(f"Batch {clean(state.batch_id) or '?'}", "bold")]
    if state.stage_count:
        parts.append(Text(f"stage {state.current_stage or 0}/{state.stage_count}"))
    if state.started_at is not None:
        parts.append(Text(format_duration((state.finished_at or now) - state.started_at)))
    parts.append(Text(f"{state.count(PrpState.MERGED)}/{len(state.rows)} merged", "green"))
    failed = state.count(PrpState.FAILED, PrpState.PARTIAL, PrpState.CONFLICT)
    parts.append(Text(f"{failed} failed", "red" if failed else "dim"))
    if state.total_cost is not None:
        parts.append(Text(f"${state.total_cost:.2f}"))
    if state.status:
        parts.append(Text(state.status, "bold"))
    return _fit(_join_fitting(parts, width), width)


def _join_fitting(parts: list[Text], width: int) -> Text:
    """Join with a separator, dropping whole trailing parts rather than cutting one in half."""
    line = Text()
    for part in parts:
        extra = Text(" · ", "dim") + part if line else part
        if line and line.cell_len + extra.cell_len > width:
            break
        line += extra
    return line


def _column_header(columns: list[_Column], width: int) -> Text:
    cells = [_cell(Text(c.header), c.width) for c in columns]
    return _fit(Text(_GAP).join(cells), width, style="bold dim")


def _row_line(row: PrpRow, columns: list[_Column], now: float, width: int) -> Text:
    cells = [_cell(c.cell(row, now), c.width) for c in columns]
    return _fit(Text(_GAP).join(cells), width)


def _cell(text: Text, width: int) -> Text:
    text = text.copy()
    text.truncate(width, overflow="ellipsis", pad=True)
    return text


def _fit(text: Text, width: int, style: str = "") -> Text:
    """One terminal line: no wrapping, cut with an ellipsis, trailing blanks removed."""
    text = text.copy()
    if style:
        text.stylize(style)
    text.rstrip()
    text.truncate(width, overflow="ellipsis")
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _visible(rows: tuple[PrpRow, ...], room: int | None) -> tuple[PrpRow, ...]:
    """When the terminal is short, keep working PRPs over waiting ones over finished ones."""
    if room is None or len(rows) <= room:
        return rows
    keep = max(room - 1, 1)  # one line says how many are hidden

    def rank(index: int) -> tuple[int, int]:
        row = rows[index]
        return (2 if row.state.finished else 1 if row.state is PrpState.PENDING else 0, index)

    chosen = sorted(sorted(range(len(rows)), key=rank)[:keep])
    return tuple(rows[i] for i in chosen)


def _lane_lines(state: BoardState, now: float, width: int) -> list[Text]:
    lane = state.lane
    if lane is None:
        return []
    line = Text("Merge lane: ", "bold")
    step = " ".join(part for part in (clean(lane.prp), lane.step, clean(lane.detail)) if part)
    if lane.busy:
        line += Text(step, "magenta") + Text(f" ({format_duration(now - lane.at)})")
    else:
        line += Text(f"idle (last: {step})", "dim")
    return [_fit(line, width)]


def _notice_lines(state: BoardState, width: int) -> list[Text]:
    lines = []
    for notice in state.notices[-_NOTICES_SHOWN:]:
        who = f"{clean(notice.prp)}: " if notice.prp else ""
        style = _NOTICE_STYLE.get(notice.level, "")
        lines.append(_fit(Text(f"{notice.level}: {who}{clean(notice.message)}", style), width))
    return lines


def strip_escapes(text: str) -> str:
    """Text without terminal escape sequences (colours, cursor moves, titles)."""
    return _ESCAPE.sub("", text)


def clean(text: str) -> str:
    """User text on one line: escapes removed, control characters (newlines…) become spaces."""
    text = strip_escapes(text)
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()
