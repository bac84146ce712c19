"""The merge lane's integration worktree gets `.worktreeinclude` files and `setup` too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce.cli import run


def test_merged_tree_checks_run_with_included_files_and_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two PRPs of one stage: the second's merged tree is not its branch's tree, so the lane
    # validates it in the integration worktree, where .env and setup's marker must exist too.
    specs = [
        Spec(id="PRP-7.1.1", title="One", phases=[[write("one.txt", "1")]], files=["one.txt"]),
        Spec(id="PRP-7.1.2", title="Two", phases=[[write("two.txt", "2")]], files=["two.txt"]),
    ]
    config = (
        'executor = "script"\n'
        "auto_review = false\n"
        "setup = \"bash -c 'touch .ready'\"\n"
        "[validate]\n"
        "level3 = \"bash -c 'test -f .env && test -f .ready'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    (repo / ".gitignore").write_text(".env\n.ready\n.ce/tmp/\n")
    (repo / ".worktreeinclude").write_text(".env\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-q", "-m", "env")
    (repo / ".env").write_text("LOCAL=1\n")
    monkeypatch.chdir(repo)

    code = run(["batch-exe", "--batch", "7", "--json", "--max-parallel", "2"])

    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    checked = [
        p for p in summary["prps"].values() if "integration_level_3" in p["validation_results"]
    ]
    assert checked, "the second merge should have been validated as a merged tree"
    assert all(p["validation_results"]["integration_level_3"]["passed"] for p in checked)


def test_merged_tree_checks_see_committed_files_and_the_prepared_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13, I3 in the integration worktree: the ignored files setup made are recorded as
    the environment ce prepared, so each merged-tree check (and the stage review) sees them,
    and never an ignored file an earlier check left there."""
    specs = [
        Spec(id=f"PRP-7.1.{n}", title=t, phases=[[write(f"{t}.txt", t)]], files=[f"{t}.txt"])
        for n, t in enumerate(("one", "two", "three"), start=1)
    ]
    check = "test -f made/by-setup && test ! -e by-a-check.out && touch by-a-check.out"
    config = (
        'executor = "script"\n'
        "max_parallel = 3\n"
        "setup = \"bash -c 'mkdir -p made && touch made/by-setup'\"\n"
        "[validate]\n"
        f"level3 = \"bash -c '{check}'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    (repo / ".gitignore").write_text("made/\n*.out\n.ce/tmp/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    monkeypatch.chdir(repo)

    code = run(["batch-exe", "--batch", "7", "--json"])

    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    checked = [
        p for p in summary["prps"].values() if "integration_level_3" in p["validation_results"]
    ]
    assert len(checked) >= 2, "two merged trees at least are checked in the integration worktree"
    assert [r["status"] for r in summary["reviews"]] == ["PASSED"]
