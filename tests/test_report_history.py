"""Reports of earlier runs are kept (issue 16 item 7): each run's files under its start time,
the latest under the batch's names, at most KEEP_RUNS runs a batch; a batch run again once
complete says so and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import git, make_batch_repo
from ce.ui.reports.history import KEEP_RUNS, past_runs, prune, run_paths
from clikit import ce
from test_cli_run import STAGED

BATCH = ("batch-exe", "--batch", "7")
SPECS = [STAGED[0], STAGED[2]]  # Alpha; Charlie, after it


def test_each_run_keeps_its_reports_beside_the_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    state = repo / ".ce" / "tmp"
    assert ce(repo, monkeypatch, capsys, *BATCH, "--stage", "1").code == 0
    assert ce(repo, monkeypatch, capsys, *BATCH, "--stage", "2").code == 0

    runs = past_runs(state, "7")

    assert len(runs) == 2
    for stamp in runs:
        for name in ("report.json", "junit.xml", "report.html"):
            assert (state / f"batch-7-{stamp}-{name}").is_file()
    first = json.loads((state / f"batch-7-{runs[0]}-report.json").read_text())
    latest = (state / "batch-7-report.json").read_text()
    assert list(first["prps"]) == ["PRP-7.1.1"]
    assert latest == (state / f"batch-7-{runs[1]}-report.json").read_text()
    assert "PRP-7.2.2" in json.loads(latest)["prps"]
    status = ce(repo, monkeypatch, capsys, "status", "--batch", "7")
    assert "Reports of 2 run(s) kept in" in status.out
    as_json = ce(repo, monkeypatch, capsys, "status", "--batch", "7", "--json").json()
    assert as_json["batches"][0]["past_runs"] == 2


def test_a_complete_batch_run_again_says_so_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    assert ce(repo, monkeypatch, capsys, *BATCH).code == 0
    state = repo / ".ce" / "tmp"

    def seen() -> tuple[str, ...]:
        return (
            git(repo, "for-each-ref"),
            git(repo, "worktree", "list", "--porcelain"),
            git(repo, "status", "--porcelain", "--ignored"),
            git(repo, "stash", "list"),
            *sorted(p.name for p in state.iterdir()),
            *sorted(p.name for p in repo.parent.iterdir()),
        )

    before = seen()
    again = ce(repo, monkeypatch, capsys, *BATCH)

    assert again.code == 0
    assert again.err.startswith(
        "Batch 7 is already complete: 2 PRPs merged (PRP-7.1.1, PRP-7.2.2); nothing to do.\n"
    )
    assert "`ce batch-exe --batch 7`" in again.err and "--retry-prp" in again.err
    assert seen() == before


def touch_run(state: Path, stamp: str) -> None:
    for suffix in ("report.json", "junit.xml", "report.html"):
        (state / f"batch-4-{stamp}-{suffix}").write_text("{}")


def test_old_runs_beyond_the_limit_are_pruned_oldest_first(tmp_path: Path) -> None:
    stamps = [f"202612{day:02d}T010000Z" for day in range(1, 26)]
    for stamp in stamps:
        touch_run(tmp_path, stamp)
    touch_run(tmp_path, "20261225T010000Z-2")  # a second run in the same second
    (tmp_path / "batch-43-20261201T010000Z-report.json").write_text("{}")  # another batch
    (tmp_path / "batch-4-report.json").write_text("{}")  # the latest

    prune(tmp_path, "4")

    kept = past_runs(tmp_path, "4")
    assert len(kept) == KEEP_RUNS
    assert kept[-2:] == ["20261225T010000Z", "20261225T010000Z-2"]
    assert kept[0] == "20261207T010000Z"
    assert not (tmp_path / "batch-4-20261206T010000Z-junit.xml").exists()
    assert (tmp_path / "batch-43-20261201T010000Z-report.json").exists()
    assert (tmp_path / "batch-4-report.json").exists()


def test_a_run_in_the_same_second_gets_its_own_names(tmp_path: Path) -> None:
    started = 1796173800.5  # 2026-12-02T01:10:00Z
    first = run_paths(tmp_path, "4", started)
    assert first.json.name == "batch-4-20261202T011000Z-report.json"
    touch_run(tmp_path, "20261202T011000Z")
    second = run_paths(tmp_path, "4", started)
    assert second.html.name == "batch-4-20261202T011000Z-2-report.html"
    assert second.junit.name == "batch-4-20261202T011000Z-2-junit.xml"
