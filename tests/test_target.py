"""The target is fixed for the batch (issue 13, I2): a resume merges into the saved target
whatever is checked out, and says so."""

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


def test_resume_after_a_branch_switch_merges_into_the_saved_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(
            id="PRP-7.2.1",
            title="Bravo",
            deps=["PRP-7.1.1"],
            phases=[[write("b.txt", "b"), "sleep 30.0703"]],
            files=["b.txt"],
        ),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = repo / ".ce/tmp/logs/PRP-7.2.1.log"
    deadline = time.monotonic() + 60
    while "phase 1 block 2/2" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "Bravo never started"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 130
    main_before = git(repo, "rev-parse", "main")
    git(repo, "switch", "-q", "-c", "feature")  # the user goes on with other work
    feature = git(repo, "rev-parse", "feature")
    edited = next((repo / "PRPs/feature-requests").glob("PRP-7.2.1*.md"))
    edited.write_text(edited.read_text().replace("sleep 30.0703", "true"))
    git(repo, "commit", "-qam", "Bravo: no sleep")  # on feature: the PRP file the run reads
    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--resume", "--json")
    assert result.code == 0, result.err
    assert "merges into main, its target since it started; feature is checked out" in result.err
    assert json.loads(result.out)["target"] == "main"
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert sum(s.startswith("Merge PRP-7.1.1") for s in subjects) == 1
    assert sum(s.startswith("Merge PRP-7.2.1") for s in subjects) == 1
    assert git(repo, "merge-base", "--is-ancestor", main_before, "main") == ""
    assert git(repo, "rev-parse", "feature") == git(repo, "rev-parse", "HEAD")
    assert not any(
        s.startswith("Merge PRP-")
        for s in git(repo, "log", "--format=%s", f"{main_before}..feature").splitlines()
    )
    assert feature != ""
