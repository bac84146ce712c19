"""The live board is drawn again only when what it shows changed (issue 17 item 4).

Untimed in what they assert: a board that shows no moving clock is never drawn again, an event
is drawn, and the clocks are redrawn at most once a second (a loaded machine only draws less).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console

from ce.core.events import BatchStarted, Notice, NoticeLevel
from ce.ui.board import Board, BoardState
from ce.ui.live import LiveBoard
from ui_samples import STAGES, info, paused_board, running_board


def live_board(state: BoardState) -> tuple[LiveBoard, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30)
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
        for n in range(200):
            live(Notice(at=time.time(), level=NoticeLevel.INFO, message=f"note {n}"))
        wait_for(lambda: "note 199" in out.getvalue())
        assert live.redraws <= 4


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
