"""Users whose git signs commits (issue 15 item 5): with `commit.gpgsign = true` and no key,
every commit ce makes itself works (none is signed), and an executor whose own commit fails
to sign is reported as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import CONFIG, Spec, git, make_batch_repo, write
from clikit import ce

AGENT = """\
printf 'a\\n' > a.txt
git add a.txt
git commit -q --no-gpg-sign -m "$CE_PRP_ID: Phase 1 - Step 1"
printf 'left\\n' > left.txt
"""


def _signing_without_a_key(repo: Path, tmp_path: Path) -> None:
    """`commit.gpgsign` on, and a signing program that fails as gpg does without a key."""
    gpg = tmp_path / "no-key-gpg"
    gpg.write_text("#!/bin/sh\necho 'gpg: no default secret key' >&2\nexit 2\n")
    gpg.chmod(0o755)
    git(repo, "config", "commit.gpgsign", "true")
    git(repo, "config", "gpg.program", str(gpg))


def test_every_commit_ce_makes_itself_works_when_git_signs_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "agent.sh"
    agent.write_text(AGENT, encoding="utf-8")
    config = f'[executor]\nname = "command"\n[executor.command]\nrun = "bash {agent}"\n'
    spec = Spec(id="PRP-7.1.1", title="Alpha", phases=[[":"]], files=["a.txt", "left.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=config)
    _signing_without_a_key(repo, tmp_path)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 0, result.err
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert any("WIP - uncommitted work saved by ce" in s for s in subjects)  # the leftover
    assert "PRP-7.1.1: status completed" in subjects
    assert any(s.startswith("Merge PRP-7.1.1") for s in subjects)
    assert any(".gitignore" in s or ".ce/tmp" in s for s in subjects), subjects
    assert set(git(repo, "log", "--format=%G?", "main").split()) == {"N"}  # none signed
    assert (repo / "left.txt").read_text() == "left\n"


def test_an_executor_whose_commit_cannot_be_signed_is_told_why_and_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=CONFIG)
    _signing_without_a_key(repo, tmp_path)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 1
    prp = json.loads(result.out)["prps"]["PRP-7.1.1"]
    assert prp["state"] == "partial"  # its files are kept, in ce's own (unsigned) WIP commit
    assert prp["error"] == (
        "commit signing failed (gpg failed to sign the data): "
        "configure a key or set commit.gpgsign=false for the worktree"
    )
    assert "GitError" not in result.err
    assert "Merge PRP-7.1.1" not in git(repo, "log", "--format=%s", "main")
