"""A PRP's history cut into segments, and the run as data: what the reports draw and store."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ce.core.events import PrpState
from ce.ui.board import BoardState, PhaseMark, PrpRow, Transition


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
