"""The report's timeline as inline SVG: one bar per PRP, its history cut into segments.

The bars' states and titles come from the typed summary; the board's timeline gives only the
times: when each PRP ran, its segments, the merges and the stages.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ce.core.durations import format_duration
from ce.core.events import PrpState
from ce.core.outcome import PrpOutcome, Summary
from ce.ui.board import BoardState, PrpRow
from ce.ui.reports.markup import escape as _e
from ce.ui.timeline import Segment, SegmentKind, segments

OUTCOME_COLOUR = {
    PrpState.MERGED: "#2f9e44",
    PrpState.PARTIAL: "#e8a317",
    PrpState.CONFLICT: "#e8590c",
    PrpState.FAILED: "#e03131",
    PrpState.SKIPPED: "#adb5bd",
}
_UNFINISHED_COLOUR = "#4c6ef5"
_KIND_OPACITY = {
    SegmentKind.PREPARE: 0.35,
    SegmentKind.PHASE: 1.0,
    SegmentKind.RUN: 0.6,
    SegmentKind.VALIDATE: 0.5,
    SegmentKind.WAIT: 0.22,
    SegmentKind.MERGE: 0.9,
}


def colour(state: PrpState | None) -> str:
    return _UNFINISHED_COLOUR if state is None else OUTCOME_COLOUR.get(state, _UNFINISHED_COLOUR)


def anchor(prp_id: str) -> str:
    """The id of the PRP's section on the page, which its bar links to."""
    return "prp-" + re.sub(r"[^A-Za-z0-9_.-]", "-", prp_id)


@dataclass(frozen=True, kw_only=True)
class Bar:
    id: str
    title: str
    state: PrpState
    start: float | None
    end: float | None
    segments: tuple[Segment, ...] = ()
    marks: tuple[tuple[float, str], ...] = ()  # (time, "merged" | "conflict")
    note: str = ""


def bars_of(summary: Summary, board: BoardState) -> list[Bar]:
    """A bar per PRP of the summary, timed by the board's record of this run."""
    end = board.finished_at or _latest(summary, board)
    return [_bar(prp, board.row(prp.id), board, end) for prp in summary.prps]


def _bar(prp: PrpOutcome, row: PrpRow | None, board: BoardState, end: float) -> Bar:
    marks = tuple((m.at, str(m.step)) for m in board.merges if m.prp == prp.id)
    bar = Bar(id=prp.id, title=prp.info.title, state=prp.state, start=None, end=None, marks=marks)
    if row is not None and row.started_at is not None:
        ran = segments(row, end)
        return replace(bar, start=row.started_at, end=row.finished_at or end, segments=ran)
    start, finish = prp.timing.started_at, prp.timing.finished_at
    if start is not None and finish is not None:  # an earlier run's
        return replace(bar, start=start, end=finish)
    return replace(bar, note=prp.error or prp.state.value)


def _latest(summary: Summary, board: BoardState) -> float:
    times = [p.timing.finished_at for p in summary.prps]
    times += [row.finished_at for row in board.rows]
    known = [t for t in times if t is not None]
    return max(known, default=board.started_at or time.time())


@dataclass(frozen=True, kw_only=True)
class _Scale:
    t0: float
    t1: float
    x0: float
    x1: float

    def x(self, t: float) -> float:
        span = max(self.t1 - self.t0, 1e-9)
        return self.x0 + (min(max(t, self.t0), self.t1) - self.t0) / span * (self.x1 - self.x0)


_WIDTH = 1100
_ROW = 28
_TOP = 34
_BOTTOM = 30
_BAR_HEIGHT = 16
_TICK_STEPS = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    43200,
)


def svg_timeline(bars: list[Bar], board: BoardState) -> str:
    if not bars:
        return '<p class="muted">No PRPs ran.</p>'
    scale = _scale_for(bars, board)
    height = _TOP + _ROW * len(bars) + _BOTTOM
    parts = [
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="timeline of the batch">',
        '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" '
        'fill-opacity="0.45"/></pattern></defs>',
        *_svg_stages(board, scale, height),
        *_svg_axis(scale, height),
    ]
    for index, bar in enumerate(bars):
        parts += _svg_bar(bar, scale, _TOP + _ROW * index)
    parts.append("</svg>")
    return "\n".join(parts)


def _scale_for(bars: list[Bar], board: BoardState) -> _Scale:
    starts = [b.start for b in bars if b.start is not None]
    ends = [b.end for b in bars if b.end is not None]
    starts += [s.started_at for s in board.stages]
    t0 = min([*starts, *([board.started_at] if board.started_at else [])], default=0.0)
    t1 = max([*ends, *([board.finished_at] if board.finished_at else []), t0 + 0.5])
    label_width = min(max(len(b.id) for b in bars) * 7.5 + 24, 230)
    return _Scale(t0=t0, t1=t1, x0=label_width, x1=_WIDTH - 16)


def _svg_stages(board: BoardState, scale: _Scale, height: int) -> Iterator[str]:
    for span in board.stages:
        x = scale.x(span.started_at)
        end = scale.x(span.finished_at or scale.t1)
        shade = "#f1f3f5" if span.stage % 2 else "#f8f9fa"
        yield (
            f'<rect x="{x:.1f}" y="{_TOP - 6}" width="{max(end - x, 0):.1f}" '
            f'height="{height - _TOP - _BOTTOM + 10}" fill="{shade}"/>'
        )
        yield (
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height - _BOTTOM + 4}" '
            'stroke="#868e96" stroke-dasharray="4 3"/>'
        )
        yield f'<text class="stage" x="{x + 4:.1f}" y="22">Stage {span.stage}</text>'


def _svg_axis(scale: _Scale, height: int) -> Iterator[str]:
    span = scale.t1 - scale.t0
    step = next((s for s in _TICK_STEPS if span / s <= 10), math.ceil(span / 10 / 3600) * 3600)
    y = height - _BOTTOM + 4
    yield (f'<line x1="{scale.x0:.1f}" y1="{y}" x2="{scale.x1:.1f}" y2="{y}" stroke="#ced4da"/>')
    for n in range(int(span / step + 1e-9) + 1):
        x = scale.x(scale.t0 + n * step)
        label = f"{n * step:.1f}s" if step < 1 else format_duration(n * step)
        yield f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#adb5bd"/>'
        yield f'<text class="axis" x="{x:.1f}" y="{y + 17}" text-anchor="middle">{label}</text>'


def _svg_bar(bar: Bar, scale: _Scale, y: int) -> list[str]:
    mid = y + _ROW / 2
    parts = [
        f'<a href="#{anchor(bar.id)}"><text x="{scale.x0 - 10:.1f}" y="{mid + 4:.1f}" '
        f'text-anchor="end" font-weight="600">{_e(bar.id)}<title>{_e(bar.title)}</title>'
        "</text></a>"
    ]
    if bar.start is None or bar.end is None:
        parts.append(
            f'<text x="{scale.x0 + 6:.1f}" y="{mid + 4:.1f}" fill="#868e96">{_e(bar.note)}</text>'
        )
        return parts
    top = mid - _BAR_HEIGHT / 2
    x0, x1 = scale.x(bar.start), scale.x(bar.end)
    fill = colour(bar.state)
    parts.append(
        f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 2):.1f}" '
        f'height="{_BAR_HEIGHT}" rx="3" fill="{fill}" fill-opacity="0.18" stroke="{fill}">'
        f"<title>{_e(bar.id)}: {_e(bar.state.value)}, "
        f"{_e(format_duration(bar.end - bar.start))}</title></rect>"
    )
    phase_index = 0
    for segment in bar.segments:
        phase_index += segment.kind is SegmentKind.PHASE
        parts += _svg_segment(bar, segment, scale, top, phase_index)
    for at, step in bar.marks:
        parts.append(_svg_mark(scale.x(at), mid, step, bar.id))
    return parts


def _svg_segment(
    bar: Bar, segment: Segment, scale: _Scale, top: float, phase_index: int
) -> list[str]:
    x0, x1 = scale.x(segment.start), scale.x(segment.end)
    width = max(x1 - x0, 1.0)
    opacity = _KIND_OPACITY[segment.kind]
    if segment.kind is SegmentKind.PHASE and phase_index % 2 == 0:
        opacity = 0.75  # neighbouring phases told apart by shade
    tip = (
        f"<title>{_e(bar.id)} {_e(segment.label)}: {_e(segment.kind.value)}, "
        f"{_e(format_duration(segment.end - segment.start))}</title>"
    )
    geometry = f'x="{x0:.1f}" y="{top:.1f}" width="{width:.1f}" height="{_BAR_HEIGHT}"'
    parts = [
        f'<rect {geometry} fill="{colour(bar.state)}" fill-opacity="{opacity}" '
        f'stroke="#fff" stroke-width="1">{tip}</rect>'
    ]
    if segment.kind is SegmentKind.VALIDATE:
        parts.append(f'<rect {geometry} fill="url(#stripes)"/>')
    if width >= 7 * len(segment.label) + 6:
        parts.append(
            f'<text class="seg-label" x="{x0 + width / 2:.1f}" y="{top + 12:.1f}" '
            f'text-anchor="middle">{_e(segment.label)}</text>'
        )
    return parts


def _svg_mark(x: float, mid: float, step: str, prp_id: str) -> str:
    tip = f"<title>{_e(prp_id)}: {_e(step)}</title>"
    if step == "merged":
        corners = ((x, mid - 8), (x + 6, mid), (x, mid + 8), (x - 6, mid))
        points = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in corners)
        return f'<polygon points="{points}" fill="#1b5e20" stroke="#fff">{tip}</polygon>'
    return (
        f'<path d="M{x - 5:.1f},{mid - 5:.1f} l10,10 m0,-10 l-10,10" stroke="#c92a2a" '
        f'stroke-width="3">{tip}</path>'
    )


def html_legend() -> str:
    outcomes = [(s.value, c) for s, c in OUTCOME_COLOUR.items()]
    outcomes.append(("unfinished", _UNFINISHED_COLOUR))
    items = [f'<span><i class="sw" style="background:{c}"></i>{_e(s)}</span>' for s, c in outcomes]
    items += [
        "<span>segments: P<i>n</i> = phase <i>n</i> (cut at its checkpoint commit), "
        "striped = validation, pale = waiting for the merge lane</span>",
        '<span><span style="color:#1b5e20">◆</span> merged '
        '<span style="color:#c92a2a">✕</span> conflict · dashed lines: stage starts</span>',
    ]
    return f'<div class="legend">{"".join(items)}</div>'
