"""Showing a run while it works: the live board on a terminal, plain lines anywhere else.

Both are listeners that also fold every event into a `Board`, because the reports written at
the end draw the run's timeline from it whatever was shown.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.text import Text

from ce.core.events import Event
from ce.secrets import mask_data
from ce.ui.board import Board
from ce.ui.plain import PlainLines
from ce.ui.render import render
from ce.ui.screen import Redraw, TerminalSize

# The board is drawn again only when what it shows changed: at once for an event (at most this
# often, so that a burst of events is drawn once), and for the clocks (elapsed times, ages) when
# one of them moved, which they do once per second.
MIN_REDRAW_SECONDS = 0.1
CLOCK_SECONDS = 1.0


class _Picture:
    """The lines last drawn; a new picture is drawn only when it differs from them."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.lines: list[Text] = []
        self._segments: list[tuple[Text, list[Segment]]] = []  # each line drawn, rendered
        self._segments_width = 0
        self.drawn_widths: list[int] = []  # cells of each line drawn last

    def update(self, now: float, width: int, height: int) -> bool:
        """Render for this moment and size (a resize is followed); True when it changed."""
        lines = render(self.board.state, now, width, height - 1)  # -1: the cursor's line
        if lines == self.lines:
            return False
        self.lines = lines
        return True

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Most lines are the same as last time (only a clock moved): their segments are reused.
        lines, width = self.lines, options.max_width
        cached = self._segments if self._segments_width == width else []
        segments = [
            cached[n][1] if n < len(cached) and cached[n][0] == line else
            _line_segments(console, options, line)
            for n, line in enumerate(lines)
        ]  # fmt: skip
        self._segments, self._segments_width = list(zip(lines, segments, strict=True)), width
        self.drawn_widths = [line.cell_len for line in lines]
        for line_segments in segments:
            yield from line_segments


def _line_segments(console: Console, options: ConsoleOptions, line: Text) -> list[Segment]:
    """`console.render(line, options)`: for a board line (one line that fits, no tab, not to be
    wrapped or justified) what `Text.__rich_console__` makes of it after its `wrap`, which
    changes nothing there and is a third of the cost of drawing the line."""
    plain = line.plain
    if (
        line.no_wrap
        and not (line.justify or options.justify)
        and line.end == "\n"
        and "\n" not in plain
        and "\t" not in plain
        and line.cell_len <= options.max_width
    ):
        return list(_NEWLINE.join([line]).render(console, end="\n"))
    return list(console.render(line, options))


_NEWLINE = Text("\n")


class _Live(Live):
    """`Live` that knows a narrowed terminal re-wrapped its last picture.

    Live moves the cursor up by as many lines as it drew. Most terminals (tmux, VTE, iTerm2,
    kitty, Windows Terminal) reflow text when they get narrower, so a line wider than the new
    width now takes several rows: go up over all of them, or the old picture stays above the new.
    """

    def __init__(self, picture: _Picture, console: Console) -> None:
        super().__init__(
            picture,
            console=console,
            auto_refresh=False,  # LiveBoard draws when the picture changed
            transient=False,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self.picture = picture

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        width, drawn = self.console.width, self.picture.drawn_widths
        shape = getattr(self._live_render, "_shape", None)
        if shape is not None and drawn and max(drawn) > width:
            rows = sum(max(1, math.ceil(cells / width)) for cells in drawn)
            self._live_render._shape = (shape[0], rows)
        return super().process_renderables(renderables)


class Progress:
    """A listener folding every event into `board`, shown while used as a context manager."""

    def __init__(self, board: Board) -> None:
        self.board = board

    def __call__(self, event: Event) -> None:
        # The engine calls this holding its lock: fold and return, never draw here.
        self.board(mask_data(event))  # the board is shown and ends up in the reports

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Begin showing the run."""

    def stop(self) -> None:
        """Stop showing the run, leaving its last picture on screen."""


class LiveBoard(Progress):
    """The board redrawn in place on a terminal; stray prints are shown above it, never inside.

    A thread of its own draws it: woken by an event, or by the clock once per second, it
    renders the picture and writes it only when it differs from the one on screen: the lines
    that changed, or the whole picture through rich when nothing less will do (`Redraw`).
    """

    def __init__(self, board: Board, console: Console) -> None:
        super().__init__(board)
        self._picture = _Picture(board)
        self._live = _Live(self._picture, console)
        self._redraw = Redraw(console)
        self._size = TerminalSize(console)
        self._changed = threading.Event()
        self._stopping = False
        self._drawer = threading.Thread(target=self._draw_while_shown, name="ce-board", daemon=True)
        self.redraws = 0  # pictures written: what a benchmark counts
        self.redrawn_in_full = 0  # of them, those rich drew whole

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        self._changed.set()

    def start(self) -> None:
        size = self._live.console.size
        self._picture.update(time.time(), size.width, size.height)
        self._live.start(refresh=True)
        self.redraws += 1
        self.redrawn_in_full += 1
        self._drawer.start()

    def stop(self) -> None:
        self._stopping = True
        self._changed.set()
        if self._drawer.is_alive():
            self._drawer.join()
        # The final state is drawn and left on screen; with the terminal gone (SIGHUP) there is
        # nothing to draw on.
        with contextlib.suppress(OSError, ValueError):
            self._draw_if_changed()
            self._live.stop()
        self._redraw.release()

    def _draw_while_shown(self) -> None:
        self._redraw.file.drawer = threading.get_ident()
        while not self._stopping:
            self._changed.wait(CLOCK_SECONDS - time.time() % CLOCK_SECONDS)
            self._changed.clear()
            if self._stopping:
                return
            with contextlib.suppress(OSError, ValueError):
                self._draw_if_changed()
            time.sleep(MIN_REDRAW_SECONDS)

    def _draw_if_changed(self) -> None:
        width, height = self._size()
        picture = self._picture
        if not picture.update(time.time(), width, height):
            return
        if self._redraw.draw_changes(picture.lines, (width, height)):
            picture.drawn_widths = [line.cell_len for line in picture.lines]
        else:
            others = self._redraw.file.others
            self._live.refresh()
            self._redraw.drawn_in_full(picture.lines, (width, height), others)
            self.redrawn_in_full += 1
        self.redraws += 1


class PlainProgress(Progress):
    """Plain timestamped lines, one per event: pipes, CI, `--json`, `--quiet`."""

    def __init__(self, board: Board, lines: PlainLines) -> None:
        super().__init__(board)
        self.lines = lines

    def __call__(self, event: Event) -> None:
        event = mask_data(event)
        self.board(event)
        self.lines(event)


def progress_for(stream: TextIO, *, quiet: bool, plain: bool) -> Progress:
    """The live board when `stream` is a capable terminal and nothing asks for plain output."""
    board = Board()
    console = Console(file=stream)
    if quiet or plain or not console.is_terminal or console.is_dumb_terminal:
        return PlainProgress(board, PlainLines(stream, quiet=quiet))
    return LiveBoard(board, console)
