"""Redrawing the live board in place: only its lines that changed, written as rich writes them.

rich's `Live.refresh` renders the whole picture through the console (segments, lines, shape,
style) and writes every line again, while a running batch changes a few clock cells a second.
`Redraw` writes the changed lines only (cursor moves and the line's ANSI), each line's ANSI
made from its spans the way rich renders a `Text` with the console's styles and colours. It
draws only over the picture the board itself put on screen: whenever anything else wrote to
the terminal (a stray print shown above the board), or its size or the number of lines changed,
it declines and the board is drawn in full again by rich.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from operator import itemgetter
from typing import IO, Any

from rich.console import COLOR_SYSTEMS, Console
from rich.style import Style
from rich.text import Span, Text


class CountingFile:
    """A console's file that counts the writes of every thread but the board's own drawer."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.drawer: int | None = None  # the drawing thread's ident
        self.others = 0  # writes of any other thread: what the board did not draw

    def write(self, text: str) -> int:
        if threading.get_ident() != self.drawer:
            self.others += 1
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "rich_proxied_file":  # rich would write to the file behind this one
            raise AttributeError(name)
        return getattr(self.file, name)


class LineAnsi:
    """A board line as the ANSI text rich writes for it on `console` (`Text.render`, then
    `Style.render` of each segment); the regions of each layout of spans, with what their
    style writes around them, kept from line to line (a row's line keeps its layout)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        name = console.color_system
        self.color_system = COLOR_SYSTEMS[name] if name else None
        self.no_color = console.no_color and self.color_system is not None
        self._regions: dict[tuple[int, tuple[Span, ...]], list[tuple[int, int, str, str]]] = {}

    def __call__(self, line: Text) -> str:
        plain = line.plain
        # Drawn as a line of the board is (joined to nothing), the line's own style is a span.
        spans = (Span(0, len(plain), line.style), *line.spans) if line.style else tuple(line.spans)
        if not spans:
            return plain
        key = (len(plain), spans)
        regions = self._regions.get(key)
        if regions is None:
            if len(self._regions) >= _REGIONS_KEPT:
                self._regions.clear()
            regions = self._regions[key] = self._cut(len(plain), spans)
        return "".join([before + plain[start:end] + after for start, end, before, after in regions])

    def _cut(self, length: int, spans: tuple[Span, ...]) -> list[tuple[int, int, str, str]]:
        """The line's regions of one style, each with what its style writes before and after
        its text (`Text.render`'s sweep over the spans)."""
        marks = [
            (0, False, 0),
            *((span.start, False, index) for index, span in enumerate(spans, 1)),
            *((span.end, True, index) for index, span in enumerate(spans, 1)),
            (length, True, 0),
        ]
        marks.sort(key=itemgetter(0, 1))
        stack: list[int] = []
        regions = []
        for (offset, leaving, index), (next_offset, _, _) in itertools.pairwise(marks):
            if leaving:
                stack.remove(index)
            else:
                stack.append(index)
            if next_offset > offset:
                styles = tuple(spans[n - 1].style for n in sorted(stack) if n)
                before, _, after = self._render(styles).partition(_TEXT)
                regions.append((offset, next_offset, before, after))
        return regions

    def _render(self, styles: tuple[str | Style, ...]) -> str:
        """`_TEXT` in the combination of `styles`, as the console writes it."""
        null = Style.null()
        style = Style.combine([null, *(self.console.get_style(s, default=null) for s in styles)])
        if self.no_color and style:
            style = style.without_color
        if not style:
            return _TEXT
        return style.render(
            _TEXT, color_system=self.color_system, legacy_windows=self.console.legacy_windows
        )


_TEXT = "\x00"  # a style's codes go around any text alike: found around this one
_REGIONS_KEPT = 1024


class Redraw:
    """The board's own lines on screen, redrawn where they changed (see the module's doc)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.file = CountingFile(console.file)
        console.file = self.file  # type: ignore[assignment]  # a text file, counted
        self.ansi = LineAnsi(console)
        # Asked once (it asks the file: a system call); a legacy Windows console takes no ANSI.
        self.terminal = console.is_terminal and not console.legacy_windows
        self.texts: list[Text] = []  # the lines on screen, and their ANSI
        self.lines: list[str] = []
        self.size: tuple[int, int] | None = None  # the terminal's then
        self.others = -1  # the file's writes of others then

    def release(self) -> None:
        """Give the console its file back."""
        self.console.file = self.file.file

    def drawn_in_full(self, texts: list[Text], size: tuple[int, int], others: int) -> None:
        """rich has drawn `texts` at `size`, the file having counted `others` before."""
        self.texts, self.lines = list(texts), [self.ansi(text) for text in texts]
        self.size, self.others = size, others

    def draw_changes(self, texts: list[Text], size: tuple[int, int]) -> bool:
        """Redraw the lines that changed; False when only a full drawing will do."""
        width, height = size
        if (
            (size, self.file.others) != (self.size, self.others)
            or len(texts) != len(self.texts)
            or len(texts) > height
            or not self.terminal
            or any(text.cell_len > width for text in texts)
        ):
            return False
        lines = [
            line if text is old else self.ansi(text)
            for text, old, line in zip(texts, self.texts, self.lines, strict=True)
        ]
        changes = changed_lines(self.lines, lines)
        if changes:
            self.file.file.write(changes)
            self.file.file.flush()
        self.texts, self.lines = list(texts), lines
        return True


def changed_lines(shown: list[str], lines: list[str]) -> str:
    """What turns `shown` on screen into `lines` (as many), the cursor on the last line's row
    before and after as rich leaves it: each changed row erased and written again."""
    out: list[str] = []
    row = last = len(lines) - 1
    for n, (old, new) in enumerate(zip(shown, lines, strict=True)):
        if old != new:
            out.append(_move(n - row) + "\r\x1b[2K" + new)
            row = n
    out.append(_move(last - row))
    return "".join(out)


def _move(rows: int) -> str:
    """The cursor `rows` rows down (up when negative), in its column."""
    if rows < 0:
        return f"\x1b[{-rows}A"
    return f"\x1b[{rows}B" if rows else ""


class TerminalSize:
    """The console's size, asked of rich again only when the terminal's changed.

    rich asks the standard streams in turn and the environment each time (several system calls
    and an error for a stdin that is no terminal); the board wants it every second. One call
    on the stream rich found the size on tells whether it changed.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seen: tuple[int, os.terminal_size] | None = None  # the stream, its size then
        self.size = (0, 0)

    def __call__(self) -> tuple[int, int]:
        if self.seen is not None:
            stream, seen = self.seen
            with contextlib.suppress(OSError):
                if os.get_terminal_size(stream) == seen:
                    return self.size
        self.seen = _terminal_size()
        width, height = self.console.size
        self.size = (width, height)
        return self.size


def _terminal_size() -> tuple[int, os.terminal_size] | None:
    """The first standard stream that is a terminal, and its size (as rich looks for it)."""
    for stream in (0, 1, 2):
        with contextlib.suppress(OSError, ValueError):
            return stream, os.get_terminal_size(stream)
    return None
