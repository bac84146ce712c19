"""The live board is drawn again only when what it shows changed (issue 17 item 4).

Untimed in what they assert: a board that shows no moving clock is never drawn again, an event
is drawn, and the clocks are redrawn at most once a second (a loaded machine only draws less).
The lines that changed are redrawn on their own: what the terminal then shows is replayed from
the output and must be the picture, as rich would have drawn it whole.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Literal

import pytest
from rich.console import Console

from ce.core.events import BatchFinished, BatchStarted, Notice, NoticeLevel, PrpChanged, PrpState
from ce.ui.board import Board, BoardState
from ce.ui.live import MIN_REDRAW_SECONDS, LiveBoard
from ce.ui.render import render
from ce.ui.screen import LineAnsi
from ui_samples import STAGES, finished_board, info, paused_board, running_board

WIDTH, HEIGHT = 100, 30


def live_board(state: BoardState) -> tuple[LiveBoard, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=WIDTH, height=HEIGHT)
    return LiveBoard(Board(state), console), out


def started_now() -> BoardState:
    """A batch that started a moment ago: its clock shows seconds, which move every second."""
    prps = tuple(info(p) for ids in STAGES for p in ids)
    started = BatchStarted(
        at=time.time(), batch_id="43", executor="script", stages=STAGES, prps=prps
    )
    return BoardState().apply(started)


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the board was not drawn in time"
        time.sleep(0.05)


def test_a_board_that_does_not_change_is_not_drawn_again() -> None:
    live, out = live_board(paused_board())  # finished: no clock moves
    with live:
        drawn = out.getvalue()
        time.sleep(2.5)
        assert (live.redraws, out.getvalue()) == (1, drawn)


def test_an_event_is_drawn() -> None:
    live, out = live_board(paused_board())
    with live:
        live(Notice(at=time.time(), level=NoticeLevel.WARNING, message="disk almost full"))
        wait_for(lambda: "disk almost full" in out.getvalue())
        assert live.redraws == 2


def test_a_burst_of_events_is_drawn_once_or_twice_not_per_event() -> None:
    live, out = live_board(paused_board())
    with live:
        start = time.monotonic()
        for n in range(200):
            live(Notice(at=time.time(), level=NoticeLevel.INFO, message=f"note {n}"))
        sent = time.monotonic() - start
        wait_for(lambda: "note 199" in out.getvalue())
        # One picture per MIN_REDRAW_SECONDS while the burst lasts, at most (a loaded machine
        # may take longer than one such interval to send it), and then the last one.
        assert live.redraws <= 4 + sent / MIN_REDRAW_SECONDS
        assert live.redraws < 200 / 4


def test_running_clocks_are_redrawn_at_most_once_a_second() -> None:
    live, _ = live_board(started_now())
    with live:
        start = time.monotonic()
        wait_for(lambda: live.redraws >= 2)
        time.sleep(3.0)
        elapsed = time.monotonic() - start
        assert 2 <= live.redraws <= elapsed + 2


def test_the_last_picture_is_left_on_screen() -> None:
    live, out = live_board(running_board())
    with live:
        live(Notice(at=time.time(), level=NoticeLevel.ERROR, message="last words"))
    assert "last words" in out.getvalue().rsplit("Batch 43", 1)[-1]


class Terminal:
    """Just enough of a terminal to replay the board's output: text, carriage return, line feed
    (as a tty's output turns it into both), cursor up and down, erase line; styles ignored."""

    TOKEN = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|(.)", re.DOTALL)

    def __init__(self, output: str) -> None:
        self.rows, self.row, self.col = [""], 0, 0
        for match in self.TOKEN.finditer(output):
            argument, command, char = match.groups()
            if char is not None:
                self.put(char)
            elif command in "AB":
                step = int(argument or 1) * (-1 if command == "A" else 1)
                self.row = min(max(self.row + step, 0), len(self.rows) - 1)
            elif command == "K":
                line = self.rows[self.row]
                self.rows[self.row] = "" if argument == "2" else line[: self.col]

    def put(self, char: str) -> None:
        if char == "\r":
            self.col = 0
        elif char == "\n":
            self.row, self.col = self.row + 1, 0
            self.rows += [""] * (self.row + 1 - len(self.rows))
        else:
            line = self.rows[self.row].ljust(self.col)
            self.rows[self.row] = line[: self.col] + char + line[self.col + 1 :]
            self.col += 1


def test_the_lines_that_changed_are_redrawn_and_the_screen_shows_the_picture() -> None:
    live, out = live_board(started_now())
    working = ("PRP-43.1.1", "PRP-43.2.1")
    with live:
        for prp in working:  # their elapsed times move every second, as the batch's does
            live(PrpChanged(at=time.time(), prp=prp, state=PrpState.RUNNING))
        wait_for(lambda: live.redraws >= 4)
        print("a stray print")  # written by another: the board's next picture is drawn whole
        drawn = live.redraws
        wait_for(lambda: live.redraws >= drawn + 2)
        for prp in working:
            live(PrpChanged(at=time.time(), prp=prp, state=PrpState.MERGED))
        live(BatchFinished(at=time.time(), status="completed"))  # nothing moves any more
        wait_for(lambda: any("completed" in row for row in Terminal(out.getvalue()).rows))
        screen = Terminal(out.getvalue()).rows
        redrawn_in_full = live.redrawn_in_full
        picture = [line.plain for line in render(live.board.state, time.time(), WIDTH, HEIGHT - 1)]
    assert screen[-len(picture) :] == picture
    assert "a stray print" in screen[: -len(picture)]
    assert redrawn_in_full <= 3 < live.redraws - redrawn_in_full  # the first, after the print


@pytest.mark.parametrize("colors", ["standard", "256", "truecolor", None])
@pytest.mark.parametrize("no_color", [False, True])
def test_a_line_redrawn_on_its_own_is_written_as_rich_writes_it(
    colors: Literal["standard", "256", "truecolor"] | None, no_color: bool
) -> None:
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, width=WIDTH, color_system=colors, no_color=no_color
    )
    ansi = LineAnsi(console)
    for board in (started_now(), running_board(), paused_board(), finished_board()):
        for line in render(board, time.time(), WIDTH):
            console.print(line)
            assert ansi(line) + "\n" == out.getvalue()
            out.seek(0)
            out.truncate()
