"""Board lines made from pieces: what rich's `Text` operations make, without their copies.

The board is made again every second while a batch runs (its clocks), and `Text`'s join,
append, `+` and fit each copy the line they work on. A piece is a text and the spans that
appending it to a `Text` would give it there; a line is made from its pieces once, equal to
what the `Text` operations make (plain, spans, style and flags).
"""

from __future__ import annotations

import functools

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.style import Style
from rich.text import Span, Text

Piece = tuple[str, tuple[Span, ...]]


def piece(part: Text) -> Piece:
    """`part` as `Text.append` adds it: its own style a span over it, then its spans."""
    plain = part.plain
    if not plain:
        return "", ()  # appending an empty text adds nothing
    own = (Span(0, len(plain), part.style),) if part.style else ()
    return plain, own + tuple(part.spans)


@functools.lru_cache(maxsize=256)
def styled(text: str, style: str | Style = "") -> Piece:
    """`piece(Text(text, style))`."""
    plain = strip_control_codes(text)
    return plain, ((Span(0, len(plain), style),) if style and plain else ())


@functools.lru_cache(maxsize=1024)
def shifted(spans: tuple[Span, ...], offset: int) -> tuple[Span, ...]:
    return tuple(Span(start + offset, end + offset, style) for start, end, style in spans)


def joined(pieces: list[Piece]) -> tuple[str, list[Span]]:
    """The text and spans of the pieces appended one after the other to `Text()`."""
    spans: list[Span] = []
    offset = 0
    for plain, own in pieces:
        spans.extend(shifted(own, offset) if offset else own)
        offset += len(plain)
    return "".join(plain for plain, _ in pieces), spans


def fitted_line(pieces: list[Piece], width: int) -> Text:
    """The pieces as one terminal line of at most `width` cells (`ce.ui.render._fit` of
    their `Text`): no wrapping, trailing blanks removed, cut with an ellipsis."""
    plain, spans = joined(pieces)
    stripped = plain.rstrip()
    if len(stripped) < len(plain):  # `Text.rstrip`: the spans trimmed to the text left
        end = len(stripped)
        spans = [
            span if span.end < end else Span(span.start, min(end, span.end), span.style)
            for span in spans
            if span.start < end
        ]
    line = Text(stripped, spans=spans, no_wrap=True, overflow="ellipsis")
    if cell_len(stripped) > width:
        line.truncate(width, overflow="ellipsis")
    return line


def runs(pieces: list[Piece | None]) -> list[Piece | None]:
    """Each run of pieces between two holes (None) made one piece."""
    merged: list[Piece | None] = []
    for part in pieces:
        last = merged[-1] if merged else None
        if part is not None and last is not None:
            merged[-1] = (last[0] + part[0], last[1] + shifted(part[1], len(last[0])))
        else:
            merged.append(part)
    return merged
