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

from rich.cells import cell_len
from rich.style import Style
from rich.text import Span, Text

from ce.core.durations import format_duration
from ce.core.events import Health, PrpState
from ce.core.events import NoticeLevel as Level
from ce.ui.board import BoardState, PrpRow
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
_CLOCKS = frozenset({"Commit", "Elapsed"})  # the columns whose cells read `now`


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
    tail = _reason_lines(state, width) + _lane_lines(state, now, width)
    tail += _notice_lines(state, width)
    room = None if height is None else max(height - 2 - len(tail), 1)
    rows = _visible(state.rows, room)
    lines = [_header(state, now, width), _column_header(columns, width)]
    lines += [_row_line(row, columns, now, width) for row in rows]
    hidden = len(state.rows) - len(rows)
    if hidden:
        lines.append(_fit(Text(f"… and {hidden} more PRP(s)", style="dim"), width))
    return lines + tail


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
    totals = state.totals  # counted as the summary counts: `failed` here is its `failing`
    parts.append(Text(f"{totals.completed}/{totals.total} merged", "green"))
    failed = totals.failing
    parts.append(Text(f"{failed} failed", "red" if failed else "dim"))
    if state.total_cost is not None:
        parts.append(Text(f"${state.total_cost:.2f}"))
    if state.status:
        parts.append(Text(state.status, "bold"))
    return _fitted(_join_fitting(parts, width), width)


def _join_fitting(parts: list[Text], width: int) -> Text:
    """Join with a separator, dropping whole trailing parts rather than cutting one in half.

    What `Text(" · ", "dim") + part` appended part after part makes (the separator's dim over
    the part, then the part's own style), made at once: the header is made again every second.
    """
    pieces: list[_Piece] = []
    cells = 0
    for part in parts:
        piece = _piece(part)
        if pieces:
            text = _SEPARATOR + piece[0]
            if cells + cell_len(text) > width:
                break
            piece = (text, (Span(0, len(text), "dim"), *_shifted(piece[1], len(_SEPARATOR))))
        pieces.append(piece)
        cells += cell_len(piece[0])
    return _text(pieces)


_SEPARATOR = " · "

# A piece of a line being made: its text and the spans `Text.append` would give it there.
_Piece = tuple[str, tuple[Span, ...]]


def _piece(part: Text) -> _Piece:
    plain = part.plain
    if not plain:
        return "", ()  # appending an empty text adds nothing
    own = (Span(0, len(plain), part.style),) if part.style else ()
    return plain, own + tuple(part.spans)


@functools.lru_cache(maxsize=1024)
def _shifted(spans: tuple[Span, ...], offset: int) -> tuple[Span, ...]:
    return tuple(Span(start + offset, end + offset, style) for start, end, style in spans)


def _text(pieces: list[_Piece]) -> Text:
    """What appending the pieces one after the other to `Text()` makes."""
    spans: list[Span] = []
    offset = 0
    for plain, own in pieces:
        spans.extend(_shifted(own, offset) if offset else own)
        offset += len(plain)
    return Text("".join(plain for plain, _ in pieces), spans=spans)


def _column_header(columns: tuple[_Column, ...], width: int) -> Text:
    return _column_header_for(columns, width).copy()


@functools.lru_cache(maxsize=64)
def _column_header_for(columns: tuple[_Column, ...], width: int) -> Text:
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
        self.clocks = tuple(c for c in columns if c.header in _CLOCKS)
        pieces: list[_Piece | None] = []  # None: a clock cell's place
        for n, column in enumerate(columns):
            if n:
                pieces.append((_GAP, ()))
            if column.header in _CLOCKS:
                pieces.append(None)
            else:
                pieces.append(_piece(_cell(column.cell(row, 0.0), column.width)))
        self.pieces = _runs(pieces)
        self.drawn: tuple[tuple[object, ...], Text] | None = None  # what the clocks read, line

    def line(self, now: float, width: int) -> Text:
        moving = [column.cell(self.row, now) for column in self.clocks]
        reads = (width, *((cell.plain, cell.style) for cell in moving))
        if self.drawn is not None and self.drawn[0] == reads:
            return self.drawn[1]
        clocks = iter(
            _clock_piece(cell.plain, cell.style, column.width)
            for cell, column in zip(moving, self.clocks, strict=True)
        )
        pieces = [next(clocks) if piece is None else piece for piece in self.pieces]
        line = _fitted(_text(pieces), width)
        self.drawn = (reads, line)
        return line


def _runs(pieces: list[_Piece | None]) -> list[_Piece | None]:
    """Each run of pieces between two clock cells made one piece."""
    runs: list[_Piece | None] = []
    for piece in pieces:
        last = runs[-1] if runs else None
        if piece is not None and last is not None:
            runs[-1] = (last[0] + piece[0], last[1] + _shifted(piece[1], len(last[0])))
        else:
            runs.append(piece)
    return runs


@functools.lru_cache(maxsize=256)
def _clock_piece(plain: str, style: str | Style, width: int) -> _Piece:
    """A clock cell (one plain text in one style) fitted to its column: the rows that started
    together read the same."""
    return _piece(_cell(Text(plain, style), width))


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
    return _fitted(text.copy(), width, style)


def _fitted(text: Text, width: int, style: str = "") -> Text:
    """`_fit` in place, for a line made here."""
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
