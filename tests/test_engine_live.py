"""What the board sees while a batch runs: phases as they are committed, a refused merge."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import CHILD_ENV, ce

BATCH = ("batch-exe", "--batch", "7", "--json")


def lines_of(err: str, prp: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in err.splitlines() if f" {prp}: " in f" {line}"]


def test_phases_are_announced_while_the_prp_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = Spec(
        id="PRP-7.1.1",
        title="Slow",
        phases=[[write("a.txt", "a"), "sleep 1.5"], [write("b.txt", "b"), "sleep 1.5"], []],
        files=["a.txt", "b.txt"],
    )
    repo = make_batch_repo(tmp_path / "repo", [slow])
    result = ce(repo, monkeypatch, capsys, *BATCH)
    assert result.code == 0, result.err
    seen = lines_of(result.err, "PRP-7.1.1")
    first = next(i for i, line in enumerate(seen) if "phase 1/3 committed" in line)
    validating = seen.index("PRP-7.1.1: validating")
    assert first < validating, seen  # seen by the monitor, not only after the executor ended
    report = json.loads((repo / ".ce/tmp/batch-7-report.json").read_text())
    phases = report["timeline"]["prps"]["PRP-7.1.1"]["phases"]
    assert [p["phase"] for p in phases][:1] == [1]


def test_a_refused_fast_forward_leaves_merging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec])
    (repo / "a.txt").write_text("mine, untracked\n")  # git will not overwrite it
    result = ce(repo, monkeypatch, capsys, *BATCH)
    assert result.code == 1
    summary = json.loads(result.out)
    assert summary["status"] == "PAUSED"
    assert summary["prps"]["PRP-7.1.1"]["state"] == "validated"
    report = json.loads((repo / ".ce/tmp/batch-7-report.json").read_text())
    row = report["timeline"]["prps"]["PRP-7.1.1"]
    assert row["state"] == "validated"  # the board left MERGING
    assert [t["state"] for t in row["transitions"]][-2:] == ["merging", "validated"]
    assert (repo / "a.txt").read_text() == "mine, untracked\n"


def test_time_a_batch_sat_interrupted_is_not_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Spec(
        id="PRP-7.1.1",
        title="Slow",
        phases=[[write("a.txt", "a"), "sleep 2"], [write("b.txt", "b"), "sleep 30"]],
        files=["a.txt", "b.txt"],
    )
    repo = make_batch_repo(tmp_path / "repo", [spec])
    began = time.time()
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = repo / ".ce/tmp/logs/PRP-7.1.1.log"
    deadline = time.monotonic() + 60
    while "phase 2 block 2/2" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "phase 2 never started"
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 130
    stopped = time.time()
    gap = 6.0
    time.sleep(gap)  # the batch sits interrupted
    edited = next((repo / "PRPs/feature-requests").glob("PRP-7.1.1*.md"))
    edited.write_text(edited.read_text().replace("sleep 30", "sleep 0"))
    git(repo, "commit", "-qam", "a shorter phase 2")
    resumed = time.time()
    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume")
    assert result.code == 0, result.err
    ended = time.time()
    summary = json.loads(result.out)
    prp = summary["prps"]["PRP-7.1.1"]
    # At most the two runs' own time: never the time between them.
    first, second = stopped - began, ended - resumed
    assert 2.0 < summary["elapsed_seconds"] <= first + second + 0.5  # both runs, not the gap
    assert prp["duration_seconds"] <= (stopped - prp["started_at"]) + second + 0.5
