"""The live board's picture: a pure render of `BoardState`; tests pin the clock.

`render(state, now, width)` is a function of its arguments only. It is drawn again every
second while a batch runs, for its clocks: what does not read the clock is kept from one
drawing to the next (the layout for a width, the column header, each row's other cells), and a
row whose clocks read the same is the same `Text` as last time. The lines are shared between
calls: read them, never change them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from rich.cells import cell_len
from rich.text import Span, Text

from ce.core.durations import format_duration
from ce.core.events import Health, PrpState
from ce.core.events import NoticeLevel as Level
from ce.ui.board import BoardState, PrpRow
from ce.ui.pieces import Piece, fitted_line, piece, runs, shifted, styled
from ce.ui.text import clean

_ACTIVE = frozenset({PrpState.PREPARING, PrpState.RUNNING})
_NOTICES_SHOWN = 3
_REASONS_SHOWN = 3
_FAILING = frozenset({PrpState.FAILED, PrpState.PARTIAL, PrpState.CONFLICT})

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
    clock: Callable[[PrpRow, float], tuple[str, str]] | None = None  # a cell reading `now`:
    # its text and style


def render(state: BoardState, now: float, width: int, height: int | None = None) -> list[Text]:
    """The board as lines of at most `width` cells; with `height`, at most that many lines."""
    width = max(width, 20)
    shape = _shape(state, width, height)
    lines = [_header(state, shape.header, now, width), shape.column_header]
    lines += [_row_line(row, shape.columns, now, width) for row in shape.rows]
    return lines + shape.hidden + shape.reasons + _lane_lines(state, now, width) + shape.notices


class _Shape(NamedTuple):
    """What of the board does not read the clock, for one state and size."""

    header: _Parts  # the header's parts around its clock
    columns: tuple[_Column, ...]
    column_header: Text
    rows: tuple[PrpRow, ...]  # those shown
    hidden: list[Text]  # the line saying how many are not
    reasons: list[Text]
    notices: list[Text]


def _shape(state: BoardState, width: int, height: int | None) -> _Shape:
    """The board's shape, kept while the state and the size are the same."""
    kept = _SHAPE.get("last")
    if kept is not None and kept[0] is state and kept[1] == (width, height):
        return kept[2]
    columns = _layout(state, width)
    reasons, notices = _reason_lines(state, width), _notice_lines(state, width)
    tail = len(reasons) + (state.lane is not None) + len(notices)  # the lane's line is one
    rows = _visible(state.rows, None if height is None else max(height - 2 - tail, 1))
    hidden = len(state.rows) - len(rows)
    more = [_fit(Text(f"… and {hidden} more PRP(s)", style="dim"), width)] if hidden else []
    header = _header_parts(state)
    shape = _Shape(header, columns, _column_header(columns, width), rows, more, reasons, notices)
    _SHAPE["last"] = (state, (width, height), shape)
    return shape


_SHAPE: dict[str, tuple[BoardState, tuple[int, int | None], _Shape]] = {}  # the last drawn


def _layout(state: BoardState, width: int) -> tuple[_Column, ...]:
    """The most useful columns that fit, in display order; the title takes what is left."""
    return _layout_for(min(max([len(r.id) for r in state.rows] + [3]), 18), width)


@functools.lru_cache(maxsize=64)
def _layout_for(id_width: int, width: int) -> tuple[_Column, ...]:
    every = _columns(id_width)
    chosen: list[_Column] = []
    used = -len(_GAP)
    for column in sorted(every, key=lambda c: c.priority):
        if used + len(_GAP) + column.width <= width:
            chosen.append(column)
            used += len(_GAP) + column.width
    chosen.sort(key=every.index)
    return tuple(
        replace(c, width=c.width + width - used) if c.header == "Title" else c for c in chosen
    )


def _columns(id_width: int) -> list[_Column]:
    return [
        _Column(header="PRP", width=id_width, priority=0, cell=lambda r, _: Text(r.id, "bold")),
        _Column(header="Stg", width=3, priority=6, cell=lambda r, _: Text(str(r.stage or ""))),
        _Column(header="Model", width=6, priority=8, cell=lambda r, _: Text(r.model, "dim")),
        _Column(header="State", width=10, priority=1, cell=_state_cell),
        _Column(header="Phase", width=5, priority=2, cell=_phase_cell),
        _Column(header="Commit", width=7, priority=7, cell=_commit_cell, clock=_commit_clock),
        _Column(header="Health", width=7, priority=3, cell=_health_cell),
        _Column(header="Elapsed", width=7, priority=4, cell=_elapsed_cell, clock=_elapsed_clock),
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
    return Text(*_commit_clock(row, now))


def _commit_clock(row: PrpRow, now: float) -> tuple[str, str]:
    if row.last_commit_at is None:
        return "-", "dim"
    return _age(now - row.last_commit_at), ""


def _health_cell(row: PrpRow, _now: float) -> Text:
    if row.state not in _ACTIVE:
        return Text("")
    return Text(row.health.value, _HEALTH_STYLE[row.health])


def _elapsed_cell(row: PrpRow, now: float) -> Text:
    return Text(*_elapsed_clock(row, now))


def _elapsed_clock(row: PrpRow, now: float) -> tuple[str, str]:
    if row.started_at is None:
        return "-", "dim"
    return format_duration((row.finished_at or now) - row.started_at), ""


def _cost_cell(row: PrpRow, _now: float) -> Text:
    return Text("-", "dim") if row.cost_usd is None else Text(f"${row.cost_usd:.2f}")


def _age(seconds: float) -> str:
    return f"{format_duration(max(seconds, 0.0))} ago"  # as `ce status` says it


def _header(state: BoardState, parts: _Parts, now: float, width: int) -> Text:
    before, after = parts
    clock = []
    if state.started_at is not None:
        clock.append((format_duration((state.finished_at or now) - state.started_at), ""))
    return fitted_line(_join_fitting([*before, *clock, *after], width), width)


def _header_parts(state: BoardState) -> _Parts:
    """The header's parts before and after its clock."""
    before = [(f"Batch {clean(state.batch_id) or '?'}", "bold")]
    if state.stage_count:
        before.append((f"stage {state.current_stage or 0}/{state.stage_count}", ""))
    totals = state.totals  # counted as the summary counts: `failed` here is its `failing`
    after = [(f"{totals.completed}/{totals.total} merged", "green")]
    failed = totals.failing
    after.append((f"{failed} failed", "red" if failed else "dim"))
    if state.total_cost is not None:
        after.append((f"${state.total_cost:.2f}", ""))
    if state.status:
        after.append((state.status, "bold"))
    return before, after


_Parts = tuple[list[tuple[str, str]], list[tuple[str, str]]]  # texts and styles


def _join_fitting(parts: list[tuple[str, str]], width: int) -> list[Piece]:
    """Join with a separator, dropping whole trailing parts rather than cutting one in half.

    As `Text(" · ", "dim") + Text(text, style)` appended part after part (the separator's dim
    over the part, then the part's own style), in pieces: the header is made every second.
    """
    pieces: list[Piece] = []
    cells = 0
    for text, style in parts:
        part = styled(text, style)
        if pieces:
            plain = _SEPARATOR + part[0]
            if cells + cell_len(plain) > width:
                break
            part = (plain, (Span(0, len(plain), "dim"), *shifted(part[1], len(_SEPARATOR))))
        pieces.append(part)
        cells += cell_len(part[0])
    return pieces


_SEPARATOR = " · "


@functools.lru_cache(maxsize=64)
def _column_header(columns: tuple[_Column, ...], width: int) -> Text:
    cells = [_cell(Text(c.header), c.width) for c in columns]
    return _fit(Text(_GAP).join(cells), width, style="bold dim")


def _row_line(row: PrpRow, columns: tuple[_Column, ...], now: float, width: int) -> Text:
    drawn = _ROW_LINES.get(id(row))
    if drawn is None or drawn.row is not row or drawn.columns is not columns:
        drawn = _RowLine(row, columns)
        if len(_ROW_LINES) >= _ROWS_KEPT:
            _ROW_LINES.clear()
        _ROW_LINES[id(row)] = drawn
    return drawn.line(now, width)


class _RowLine:
    """One row's line: the cells that do not read the clock made once (each run of them as one
    piece), the line made again only when a clock cell reads differently (else it is the line
    made last time)."""

    def __init__(self, row: PrpRow, columns: tuple[_Column, ...]) -> None:
        self.row, self.columns = row, columns
        self.clocks = tuple((c.clock, c.width) for c in columns if c.clock is not None)
        cells: list[Piece | None] = []  # None: a clock cell's place
        for n, column in enumerate(columns):
            if n:
                cells.append((_GAP, ()))
            if column.clock is not None:
                cells.append(None)
            else:
                cells.append(piece(_cell(column.cell(row, 0.0), column.width)))
        self.pieces = runs(cells)
        # The width and what the clocks read when the line was made, and the line.
        self.drawn: tuple[int, tuple[tuple[str, str], ...], Text] | None = None

    def line(self, now: float, width: int) -> Text:
        reads = tuple(clock(self.row, now) for clock, _ in self.clocks)
        if self.drawn is not None and self.drawn[:2] == (width, reads):
            return self.drawn[2]
        clocks = iter(
            _clock_piece(text, style, cells)
            for (text, style), (_, cells) in zip(reads, self.clocks, strict=True)
        )
        line = fitted_line([next(clocks) if p is None else p for p in self.pieces], width)
        self.drawn = (width, reads, line)
        return line


@functools.lru_cache(maxsize=256)
def _clock_piece(text: str, style: str, width: int) -> Piece:
    """A clock cell fitted to its column: the rows that started together read the same."""
    return piece(_cell(Text(text, style), width))


# Each row's `_RowLine` by the row object's id, checked against the row itself: the board
# replaces a row's object at every change, so the entries of rows gone are dropped now and then.
_ROW_LINES: dict[int, _RowLine] = {}
_ROWS_KEPT = 4096


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


def _reason_lines(state: BoardState, width: int) -> list[Text]:
    """Why the latest PRPs that failed did (the summary has them all)."""
    failing = [row for row in state.rows if row.state in _FAILING and row.message]
    failing.sort(key=lambda row: row.finished_at or 0.0)
    return [
        _fit(
            Text(
                f"{clean(row.id)} {row.state.value}: {clean(row.message)}", STATE_STYLE[row.state]
            ),
            width,
        )
        for row in failing[-_REASONS_SHOWN:]
    ]
