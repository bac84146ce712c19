"""The live board: the fold of events and the render, as data with a fixed clock; the drawers."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import pytest
from rich.console import Console
from rich.text import Text

from ce.core.events import (
    BatchStarted,
    Event,
    Health,
    LaneStep,
    MergeStep,
    Notice,
    NoticeLevel,
    PrpChanged,
    PrpInfo,
    PrpState,
)
from ce.ui.board import Board, BoardState, fold
from ce.ui.live import LiveBoard, PlainProgress, progress_for
from ce.ui.render import render
from ce.ui.timeline import SegmentKind, segments, timeline
from ui_samples import (
    T0,
    changed,
    finished_board,
    paused_board,
    running_board,
    stage_one,
    stage_two_running,
)

NOW = T0 + 120


def plain(lines: list[Text]) -> list[str]:
    return [line.plain for line in lines]


# -- the fold ---------------------------------------------------------------------------------


def test_fold_tracks_every_prp_and_the_batch() -> None:
    board = running_board()

    assert (board.batch_id, board.executor, board.stage_count, board.current_stage) == (
        "43",
        "script",
        3,
        2,
    )
    assert board.started_at == T0
    states = {row.id: (row.state, row.phases_done, row.health) for row in board.rows}
    assert states == {
        "PRP-43.1.1": (PrpState.MERGED, 3, Health.HEALTHY),
        "PRP-43.2.1": (PrpState.RUNNING, 1, Health.HEALTHY),
        "PRP-43.2.2": (PrpState.RUNNING, 0, Health.WARNING),
        "PRP-43.2.3": (PrpState.VALIDATING, 2, Health.HEALTHY),
        "PRP-43.3.1": (PrpState.PENDING, 0, Health.HEALTHY),
    }
    first = board.row("PRP-43.1.1")
    assert first is not None
    assert (first.started_at, first.finished_at, first.merged_at) == (T0, T0 + 89, T0 + 89)
    assert first.last_commit_at == T0 + 70
    assert board.lane is not None and not board.lane.busy
    assert [(m.prp, m.step) for m in board.merges] == [("PRP-43.1.1", "merged")]
    assert [s.stage for s in board.stages] == [1, 2]
    assert board.stages[0].finished_at == T0 + 89
    assert board.stages[1].finished_at is None


def test_apply_returns_a_new_state_and_leaves_the_old_one_alone() -> None:
    before = running_board()
    after = before.apply(changed(121, "PRP-43.2.1", PrpState.VALIDATING))

    assert before.row("PRP-43.2.1").state is PrpState.RUNNING  # type: ignore[union-attr]
    assert after.row("PRP-43.2.1").state is PrpState.VALIDATING  # type: ignore[union-attr]


def test_a_relaunched_executor_starts_healthy_again() -> None:
    board = running_board().apply(changed(130, "PRP-43.2.2", PrpState.RUNNING, "attempt 2"))

    assert board.row("PRP-43.2.2").health is Health.HEALTHY  # type: ignore[union-attr]


def test_validation_means_every_phase_was_committed() -> None:
    # The monitor polls: a fast executor can finish before any of its commits were reported.
    board = running_board().apply(changed(121, "PRP-43.2.2", PrpState.VALIDATING))

    assert board.row("PRP-43.2.2").phases_done == 1  # type: ignore[union-attr]


def test_prps_merged_by_an_earlier_run_did_no_work_in_this_one() -> None:
    info = PrpInfo(id="PRP-1", title="t", stage=1, model="m", phases=1, branch="b", worktree="w")
    board = fold(
        [
            BatchStarted(
                at=T0,
                batch_id="1",
                executor="script",
                stages=(("PRP-1",),),
                prps=(info,),
                resumed=True,
            ),
            PrpChanged(
                at=T0, prp="PRP-1", state=PrpState.MERGED, message="merged earlier", earlier=True
            ),
        ]
    )

    row = board.row("PRP-1")
    assert row is not None and board.resumed
    assert (row.state, row.started_at) == (PrpState.MERGED, None)
    assert segments(row, T0 + 10) == ()


def test_events_about_an_unannounced_prp_still_show() -> None:
    board = BoardState().apply(PrpChanged(at=T0, prp="PRP-9", state=PrpState.RUNNING))

    assert [(r.id, r.state) for r in board.rows] == [("PRP-9", PrpState.RUNNING)]


@dataclass(frozen=True, kw_only=True)
class _CostedChange(PrpChanged):
    cost_usd: float


def test_cost_is_picked_up_when_an_event_carries_it() -> None:
    board = running_board().apply(
        _CostedChange(at=T0 + 121, prp="PRP-43.2.1", state=PrpState.VALIDATING, cost_usd=0.42)
    )

    assert board.total_cost == pytest.approx(0.42)
    row_line = next(line for line in plain(render(board, NOW, 160)) if "PRP-43.2.1" in line)
    assert "$0.42" in row_line
    assert "$0.42" in plain(render(board, NOW, 160))[0]
    assert running_board().total_cost is None


@dataclass(frozen=True, kw_only=True)
class _CostReported(Event):
    prp: str
    cost_usd: float


def test_cost_may_come_with_any_event_about_a_prp() -> None:
    board = running_board().apply(_CostReported(at=T0 + 121, prp="PRP-43.1.1", cost_usd=1.5))
    board = board.apply(_CostReported(at=T0 + 122, prp="PRP-43.2.3", cost_usd=0.25))

    assert board.row("PRP-43.1.1").cost_usd == 1.5  # type: ignore[union-attr]
    assert board.total_cost == pytest.approx(1.75)
    assert board.row("PRP-43.1.1").state is PrpState.MERGED  # type: ignore[union-attr]


def test_the_board_listener_folds_events_from_many_threads() -> None:
    board = Board(running_board())

    def shout(n: int) -> None:
        for k in range(50):
            board(Notice(at=T0 + 200, level=NoticeLevel.INFO, message=f"{n}-{k}"))

    threads = [threading.Thread(target=shout, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(board.state.notices) == 1 + 200


# -- the timeline -----------------------------------------------------------------------------


def test_segments_cut_the_work_at_checkpoint_commits() -> None:
    board = paused_board()

    def cut(prp_id: str) -> list[tuple[str, str, float, float]]:
        row = board.row(prp_id)
        assert row is not None
        return [(s.kind.value, s.label, s.start - T0, s.end - T0) for s in segments(row, T0 + 170)]

    assert cut("PRP-43.1.1") == [
        ("prepare", "prepare", 0, 2),
        ("phase", "P1", 2, 20),
        ("phase", "P2", 20, 45),
        ("phase", "P3", 45, 70),
        ("run", "run", 70, 72),
        ("validate", "validate", 72, 80),
        ("merge", "merge", 80, 89),
    ]
    # Two phases seen in one poll make one segment; a failed run is the phase it was on.
    assert cut("PRP-43.2.3")[1] == ("phase", "P1–2", 96, 115)
    assert cut("PRP-43.2.2") == [("prepare", "prepare", 93, 95), ("run", "P1", 95, 150)]
    assert cut("PRP-43.3.1") == []


def test_an_unfinished_prp_is_drawn_up_to_the_given_time() -> None:
    row = running_board().row("PRP-43.2.1")
    assert row is not None

    last = segments(row, NOW)[-1]
    assert (last.kind, last.label, last.end) == (SegmentKind.RUN, "P2", NOW)


def test_timeline_is_plain_data() -> None:
    data = timeline(paused_board())

    assert data["status"] == "paused"
    assert [s["stage"] for s in data["stages"]] == [1, 2]
    assert [(m["prp"], m["step"]) for m in data["merges"]] == [
        ("PRP-43.1.1", "merged"),
        ("PRP-43.2.1", "merged"),
        ("PRP-43.2.3", "conflict"),
    ]
    assert data["prps"]["PRP-43.2.3"]["state"] == "conflict"
    assert data["prps"]["PRP-43.1.1"]["phases"][0] == {
        "at": T0 + 20,
        "phase": 1,
        "total": 3,
        "title": "Step 1",
    }


# -- the render -------------------------------------------------------------------------------


def test_render_at_100_columns() -> None:
    assert plain(render(running_board(), NOW, 100)) == [
        "Batch 43 · stage 2/3 · 2m 00s · 1/5 merged · 0 failed",
        "PRP         Stg  Model   State       Phase  Commit   Health   Elapsed  Cost     Title",
        "PRP-43.1.1  1    sonnet  merged      3/3    50s ago           1m 29s   -        "
        'Config <parser> & "…',
        "PRP-43.2.1  2    haiku   running     1/2    10s ago  HEALTHY  28s      -        "
        "Cache layer [bold]f…",
        "PRP-43.2.2  2    opus    running     0/1    -        WARNING  27s      -        "
        "<script>alert('x')<…",
        "PRP-43.2.3  2    haiku   validating  2/2    5s ago            26s      -        "
        "Docs index",
        "PRP-43.3.1  3    opus    pending     0/1    -                 -        -        "
        "Release notes",
        "Merge lane: idle (last: PRP-43.1.1 merged 0987654321)",
        "info: PRP-43.2.3: committed leftover changes",
    ]


def test_render_at_60_columns_keeps_the_essential_columns() -> None:
    lines = plain(render(running_board(), NOW, 60))

    assert lines[1] == "PRP         State       Phase  Health   Elapsed  Title"
    assert lines[3] == "PRP-43.2.1  running     1/2    HEALTHY  28s      Cache laye…"


def test_the_header_and_lane_follow_the_run() -> None:
    busy = running_board().apply(
        MergeStep(at=T0 + 115, prp="PRP-43.2.3", step=LaneStep.VALIDATE, detail="tree abc")
    )
    lines = plain(render(busy, NOW, 100))
    assert lines[-2] == "Merge lane: PRP-43.2.3 validate tree abc (5s)"

    done = plain(render(paused_board(), T0 + 9999, 100))
    assert done[0] == "Batch 43 · stage 2/3 · 2m 50s · 2/5 merged · 2 failed · paused"
    assert done[-1] == "error: PRP-43.2.3: merge conflict in docs/index.md"

    assert plain(render(finished_board(), T0 + 9999, 100))[0] == (
        "Batch 43 · stage 3/3 · 3m 26s · 5/5 merged · 0 failed · completed"
    )


@pytest.mark.parametrize("width", [60, 100, 160])
@pytest.mark.parametrize("board", [running_board(), paused_board(), finished_board()])
def test_render_never_wraps(width: int, board: BoardState) -> None:
    lines = render(board, NOW, width)

    assert all(line.cell_len <= width for line in lines)
    assert all(row.id in "".join(line.plain for line in lines) for row in board.rows)
    assert all(ch.isprintable() for line in lines for ch in line.plain)
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    for line in lines:
        console.print(line)
    assert out.getvalue().splitlines() == [line.plain for line in lines]


def test_a_short_terminal_shows_working_prps_first() -> None:
    lines = plain(render(running_board(), NOW, 100, height=8))

    assert len(lines) == 8
    shown = [line.split()[0] for line in lines[2:5]]
    assert shown == ["PRP-43.2.1", "PRP-43.2.2", "PRP-43.2.3"]
    assert lines[5] == "… and 2 more PRP(s)"


def test_an_empty_board_renders() -> None:
    assert plain(render(BoardState(), NOW, 40))[0] == "Batch ? · 0/0 merged · 0 failed"


def test_user_text_cannot_break_the_board() -> None:
    board = running_board().apply(
        Notice(
            at=NOW, level=NoticeLevel.WARNING, message="line one\nline two\x1b[2J\x07 [red]x[/red]"
        )
    )

    assert plain(render(board, NOW, 100))[-1] == "warning: line one line two  [red]x[/red]"


# -- the drawers ------------------------------------------------------------------------------


def test_off_a_terminal_progress_is_plain_lines_without_escapes() -> None:
    stream = io.StringIO()
    progress = progress_for(stream, quiet=False, plain=False)
    assert isinstance(progress, PlainProgress)

    with progress:
        for event in [*stage_one(), *stage_two_running()]:
            progress(event)

    lines = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue()
    assert lines[0].endswith("batch 43: starting 5 PRP(s) in 3 stage(s) with the script executor")
    assert any(line.endswith("PRP-43.1.1: merged as 0987654321") for line in lines)
    assert progress.board.state.row("PRP-43.2.2").health is Health.WARNING  # type: ignore[union-attr]


def test_quiet_prints_errors_only() -> None:
    stream = io.StringIO()
    progress = progress_for(stream, quiet=True, plain=False)

    for event in [*stage_one(), Notice(at=T0, level=NoticeLevel.ERROR, message="boom")]:
        progress(event)

    assert stream.getvalue().count("\n") == 1
    assert stream.getvalue().rstrip().endswith("error: boom")
    assert len(progress.board.state.rows) == 5


def test_the_live_board_draws_on_a_terminal_and_leaves_the_last_picture() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30)
    live = LiveBoard(Board(), console)

    with live:
        for event in [*stage_one(), *stage_two_running()]:
            live(event)
        print("a stray print")  # shown above the board, never inside it

    text = out.getvalue()
    assert "a stray print" in text
    assert "\x1b[" in text
    last = text.rsplit("a stray print", 1)[-1]
    for prp_id in ("PRP-43.1.1", "PRP-43.2.1", "PRP-43.2.2", "PRP-43.2.3", "PRP-43.3.1"):
        assert prp_id in last


def test_a_terminal_gets_the_live_board_unless_plain_is_asked() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_for(Tty(), quiet=False, plain=False), LiveBoard)
    assert isinstance(progress_for(Tty(), quiet=False, plain=True), PlainProgress)
    assert isinstance(progress_for(Tty(), quiet=True, plain=False), PlainProgress)
