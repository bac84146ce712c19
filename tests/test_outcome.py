"""The typed summary: every PRP counted in exactly one bucket, and the text summary, the JSON and
the board giving the same counts for one real run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TextIO

import pytest

from batchkit import Spec, make_batch_repo, write
from ce.cli import batch as batch_cli
from ce.core.events import PrpState
from ce.core.outcome import BUCKET, Bucket, ReportPaths, Totals
from ce.ui.board import Board
from ce.ui.live import Progress, progress_for
from ce.ui.render import render
from clikit import ce


@pytest.mark.parametrize("state", list(PrpState))
def test_each_state_counts_in_exactly_one_bucket(state: PrpState) -> None:
    totals = Totals.of([state])

    counts = {bucket: totals.count(bucket) for bucket in Bucket}
    assert totals.total == 1
    assert sum(counts.values()) == 1
    assert counts[BUCKET[state]] == 1


def test_the_buckets_add_up_to_the_total() -> None:
    states = [*PrpState, PrpState.MERGED, PrpState.CONFLICT]

    totals = Totals.of(states)

    assert sum(totals.count(bucket) for bucket in Bucket) == totals.total == len(states)
    assert (totals.completed, totals.conflict, totals.partial) == (2, 2, 1)
    assert totals.waiting == 2  # validated and merging: not merged, not "not started"
    assert totals.not_started == 1
    assert set(totals.to_json()) == {"total", *(bucket.value for bucket in Bucket)}


def test_a_conflict_is_not_partial_and_a_refused_fast_forward_is_waiting() -> None:
    totals = Totals.of([PrpState.CONFLICT, PrpState.VALIDATED])

    assert (totals.partial, totals.conflict, totals.waiting, totals.not_started) == (0, 1, 1, 0)


# One stage: One merges, Two conflicts with it, Bad fails; Four needs Bad and is skipped.
MIXED = [
    Spec(
        id="PRP-7.1.1",
        title="One",
        phases=[[write("one.txt", "1"), write("s", "one")]],
        files=["one.txt"],
        order=1,
    ),
    Spec(
        id="PRP-7.1.2",
        title="Two",
        phases=[["sleep 0.3", write("two.txt", "2"), write("s", "two")]],
        files=["two.txt"],
        order=2,
    ),
    Spec(id="PRP-7.1.3", title="Bad", phases=[["exit 3"]], files=["bad.txt"], order=3),
    Spec(
        id="PRP-7.2.1",
        title="Four",
        deps=["PRP-7.1.3"],
        phases=[[write("four.txt", "4")]],
        files=["four.txt"],
    ),
]
CONFIG = 'executor = "script"\n[monitor]\npoll_seconds = 0.2\n[validate]\ndrift_threshold = 100\n'


def test_the_text_summary_the_json_and_the_board_count_one_run_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", MIXED, config=CONFIG)
    boards: list[Board] = []

    def keep_board(stream: TextIO, *, quiet: bool, plain: bool) -> Progress:
        progress = progress_for(stream, quiet=quiet, plain=plain)
        boards.append(progress.board)
        return progress

    monkeypatch.setattr(batch_cli, "progress_for", keep_board)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--continue-on-error")

    assert result.code == 1, result.err
    report = json.loads(ReportPaths.of(repo / ".ce" / "tmp", "7").json.read_text())
    states = {prp_id: prp["state"] for prp_id, prp in report["prps"].items()}
    assert states == {
        "PRP-7.1.1": "merged",
        "PRP-7.1.2": "conflict",
        "PRP-7.1.3": "failed",
        "PRP-7.2.1": "skipped",
    }
    totals = report["totals"]
    assert totals == {
        "total": 4,
        "completed": 1,
        "partial": 0,
        "failed": 1,
        "conflict": 1,
        "skipped": 1,
        "waiting": 0,
        "in_progress": 0,
        "not_started": 0,
    }
    assert (
        "Total PRPs: 4  Completed: 1  Partial: 0  Conflict: 1  Failed: 1  Skipped: 1"
        in result.out.splitlines()
    )
    (board,) = boards
    assert board.state.totals.to_json() == totals
    header = render(board.state, board.state.finished_at or 0.0, 200)[0].plain
    merged, failing = map(int, re.findall(r"(\d+)/4 merged · (\d+) failed", header)[0])
    assert (merged, failing) == (totals["completed"], totals["failed"] + totals["conflict"])
    timeline_states = [PrpState(p["state"]) for p in report["timeline"]["prps"].values()]
    assert Totals.of(timeline_states).to_json() == totals
