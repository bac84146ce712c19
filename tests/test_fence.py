"""An agent cannot move what is not its own (issue 15 item 4): from its worktree, or from the
user's checkout with `git -C`, an executor may update its own branch and nothing else; the PRP
fails naming what it tried, the target stays where it was, and the user's hooks still run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo
from clikit import ce

ROOT = '"$(git rev-parse --path-format=absolute --git-common-dir)/.."'

ROGUE = f"""\
printf 'r\\n' > r.txt
git add r.txt
git commit -q -m "$CE_PRP_ID: Phase 1 - Step 1"
git update-ref refs/heads/main HEAD && echo MOVED update-ref
git branch -f main HEAD && echo MOVED branch
git push -q . HEAD:main && echo MOVED push
git push -q . HEAD:refs/heads/other && echo MOVED push-other
env -u GIT_CONFIG_PARAMETERS git push -q . HEAD:refs/heads/other2 && echo MOVED push-scrubbed
git tag v9 && echo MOVED tag
printf 'm\\n' > {ROOT}/m.txt
git -C {ROOT} add m.txt
git -C {ROOT} commit -q -m 'on your main' && echo MOVED commit
exit 0
"""


def _command_config(agent: Path) -> str:
    return (
        "[monitor]\npoll_seconds = 0.2\n"
        f'[executor]\nname = "command"\n[executor.command]\nrun = "bash {agent}"\n'
    )


def test_a_command_agent_cannot_move_main_or_tags_and_its_prp_fails_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "rogue.sh"
    agent.write_text(ROGUE, encoding="utf-8")
    spec = Spec(id="PRP-7.1.1", title="Rogue", phases=[[":"]], files=["r.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=_command_config(agent))
    hook = repo / ".git" / "hooks" / "post-commit"  # the user's own hook still runs
    hook.write_text('#!/bin/sh\necho "$(git rev-parse --abbrev-ref HEAD)" >> "$HOOK_LOG"\n')
    hook.chmod(0o755)
    monkeypatch.setenv("HOOK_LOG", str(tmp_path / "hook.log"))
    config_before = (repo / ".git" / "config").read_text()

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 1, result.err
    prp = json.loads(result.out)["prps"]["PRP-7.1.1"]
    assert prp["state"] == "failed"
    branch = prp["branch"]
    assert prp["error"] == (
        "the executor tried to update refs/heads/main, refs/heads/other, refs/heads/other2, "
        f"refs/tags/v9 (refused: it may update only {branch})"
    )
    log = (repo / ".ce" / "tmp").rglob("*.log")
    text = "\n".join(path.read_text() for path in log)
    assert "MOVED" not in text
    assert "ce: refused to update refs/heads/main: this agent may update only" in text
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert "on your main" not in subjects and not any("Rogue" in s for s in subjects)
    assert git(repo, "tag") == ""
    assert git(repo, "branch", "--list", "other*") == ""
    assert git(repo, "log", "--format=%s", "-1", branch) == "PRP-7.1.1: Phase 1 - Step 1"
    # The user's post-commit hook ran for the agent's own commit, in its worktree.
    assert (tmp_path / "hook.log").read_text().splitlines()[0] == branch
    # The shared config changed only by per-worktree config being turned on.
    added = set((repo / ".git" / "config").read_text().splitlines()) - set(
        config_before.splitlines()
    )
    assert added <= {"\tworktreeConfig = true", "[extensions]", "\trepositoryformatversion = 1"}
    assert "hookspath" not in (repo / ".git" / "config").read_text().lower()


def test_the_fence_leaves_other_repositories_and_ce_itself_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent's own test fixtures (another repository) commit on their main and run their
    own hooks; the batch merges as usual, and the fence goes with the worktree."""
    agent = tmp_path / "agent.sh"
    agent.write_text(
        "set -e\n"
        f"git init -q -b main {tmp_path}/fixture\n"
        f"cd {tmp_path}/fixture\n"
        "printf '#!/bin/sh\\ntouch ran\\n' > .git/hooks/post-commit\n"
        "chmod +x .git/hooks/post-commit\n"
        "git -c user.name=t -c user.email=t@t commit -q --allow-empty -m fixture\n"
        "git tag fixture-tag\n"
        'cd "$CE_WORKTREE"\n'
        "printf 'a\\n' > a.txt && git add a.txt\n"
        'git commit -q -m "$CE_PRP_ID: Phase 1 - Step 1"\n',
        encoding="utf-8",
    )
    spec = Spec(id="PRP-7.1.1", title="Alpha", phases=[[":"]], files=["a.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=_command_config(agent))

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 0, result.err
    assert (repo / "a.txt").read_text() == "a\n"
    assert (tmp_path / "fixture" / "ran").exists()
    assert git(tmp_path / "fixture", "tag") == "fixture-tag"
    assert not list((repo / ".git" / "worktrees").glob("*/ce-hooks"))
