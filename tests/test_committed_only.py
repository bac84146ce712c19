"""Validated means committed (issue 13 case 5, I3): what an agent left untracked or ignored
takes no part in validation; what ce prepared (`.worktreeinclude`, `setup`) does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce import git as cegit
from ce.cli import run
from ce.run import worktree_env


def test_an_ignored_file_the_agent_made_does_not_let_the_branch_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tests need gen.txt; git ignores it; the agent made it: a clean checkout of the
    branch fails, so the branch must fail too. `.env` (included) and `.ready` (setup) count."""
    specs = [
        Spec(
            id="PRP-7.1",
            title="Generates",
            phases=[[write("one.txt", "1"), "echo generated > gen.txt"]],
            files=["one.txt"],
        )
    ]
    config = (
        'executor = "script"\n'
        "auto_review = false\n"
        "setup = \"bash -c 'touch .ready'\"\n"
        "[validate]\n"
        "level3 = \"bash -c 'test -f .env && test -f .ready && test -f gen.txt'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    (repo / ".gitignore").write_text(".env\n.ready\ngen.txt\n.ce/tmp/\n")
    (repo / ".worktreeinclude").write_text(".env\n")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-q", "-m", "env")
    (repo / ".env").write_text("LOCAL=1\n")
    monkeypatch.chdir(repo)

    code = run(["batch-exe", "--batch", "7", "--json"])

    out = capsys.readouterr()
    assert code == 1, out.err
    record = json.loads(out.out)["prps"]["PRP-7.1"]
    assert "validation L3 failed" in record["error"]
    kept = tmp_path / "repo-prp-7.1"
    assert (kept / "gen.txt").read_text() == "generated\n"  # put back after validation
    assert (kept / ".env").is_file() and (kept / ".ready").is_file()


def test_committed_only_moves_the_rest_aside_and_back(tmp_path: Path, repo: Path) -> None:
    user = cegit.Repo(repo)
    (repo / ".gitignore").write_text("*.log\nbuild/\n", encoding="utf-8")
    user.commit_all("ignore")
    worktree = tmp_path / "wt"
    user.add_worktree(worktree, "prp-1", "HEAD")
    (worktree / "setup.log").write_text("env\n", encoding="utf-8")
    worktree_env.record_environment(worktree)
    (worktree / "agent.log").write_text("agent\n", encoding="utf-8")
    (worktree / "build").mkdir()
    (worktree / "build" / "out.bin").write_text("out\n", encoding="utf-8")
    scratch = tmp_path / "scratch"

    with worktree_env.committed_only(worktree, scratch) as moved:
        assert moved == ["agent.log", "build/"]
        assert not (worktree / "agent.log").exists() and not (worktree / "build").exists()
        assert (worktree / "setup.log").is_file()
        assert (scratch / "aside" / "build" / "out.bin").is_file()
        (worktree / "agent.log").write_text("made by a check\n", encoding="utf-8")

    assert (worktree / "agent.log").read_text() == "made by a check\n"  # the check's wins
    assert (scratch / "aside" / "agent.log").read_text() == "agent\n"  # and nothing is lost
    assert (worktree / "build" / "out.bin").read_text() == "out\n"
    (worktree / "agent.log").unlink()
    # The leftover goes back first (as after a run killed during validation), then aside again.
    with worktree_env.committed_only(worktree, scratch) as again:
        assert again == ["agent.log", "build/"]
    assert (worktree / "agent.log").read_text() == "agent\n"


def test_included_files_skip_fifos_and_copy_symlinks_as_symlinks(
    tmp_path: Path, repo: Path
) -> None:
    """Case 8 / I6 for the worktree's environment: a FIFO matched by .worktreeinclude is
    neither opened nor copied; a symlink to /dev/zero is copied as a link, never read."""
    user = cegit.Repo(repo)
    (repo / ".gitignore").write_text("local/\n", encoding="utf-8")
    (repo / ".worktreeinclude").write_text("local/\n", encoding="utf-8")
    user.commit_all("include local/")
    (repo / "local").mkdir()
    os.mkfifo(repo / "local" / "pipe")
    (repo / "local" / "zero").symlink_to("/dev/zero")
    (repo / "local" / "settings").write_text("s\n", encoding="utf-8")
    worktree = tmp_path / "wt"
    worktree.mkdir()

    copied, refused = worktree_env.copy_included(repo, worktree)

    assert (sorted(copied), refused) == (["local/settings", "local/zero"], [])
    assert (worktree / "local" / "zero").readlink() == Path("/dev/zero")
    assert not (worktree / "local" / "pipe").exists()
