"""Exit 0 means it is there (issue 13, I4): every merge ce made is still on the target when it
reports success; what an agent did outside its worktree that ce can see is reported."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import ce

ROOT = '"$(git rev-parse --path-format=absolute --git-common-dir)/.."'
UNFENCED = "env -u GIT_CONFIG_PARAMETERS git"  # past ce's fence (git.fence): the guard's turn
WAIT_FOR_ALPHA = (
    f"until git -C {ROOT} log --format=%s main | grep -q 'Merge PRP-7.1.1'; do sleep 0.1; done"
)


def test_an_agent_rewinding_main_past_a_merge_is_not_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(
            id="PRP-7.1.2",
            title="Rogue",
            phases=[
                [
                    WAIT_FOR_ALPHA,
                    f"{UNFENCED} -C {ROOT} reset -q --hard main~1",  # drops Alpha's merge
                    f"printf '#!/bin/sh\\n' > {ROOT}/.git/hooks/post-commit",
                    f"chmod +x {ROOT}/.git/hooks/post-commit",
                    write("r.txt", "r"),
                ]
            ],
            files=["r.txt"],
        ),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert summary["status"] == "PAUSED"
    assert "The merges of PRP-7.1.1 are no longer on main" in summary["pause_reason"]
    assert summary["prps"]["PRP-7.1.1"]["state"] == "validated"
    assert "git hooks were added or changed (while PRP-7.1.1, PRP-7.1.2 ran)" in result.err
    assert "main was moved outside ce" in result.err
    assert "prp-7-1-1-alpha" in git(repo, "branch", "--format=%(refname:short)")  # kept
    (repo / ".git/hooks/post-commit").unlink()
    again = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--resume", "--json")
    assert again.code == 0, again.err
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert sum(s.startswith("Merge PRP-7.1.1") for s in subjects) == 1
    assert (repo / "a.txt").exists() and (repo / "r.txt").exists()


def test_the_guard_looks_at_each_merge_once_while_the_target_moves_forward(tmp_path: Path) -> None:
    """Reachability is re-checked only for new merges while the target only moves forward,
    and for every merge again once it moved back (linear over a batch, and still exact)."""
    from ce import git as ce_git
    from ce.core.events import PrpInfo
    from ce.run.guard import Guard
    from ce.run.record import PrpRecord

    repo = make_batch_repo(tmp_path / "repo", [])
    first = git(repo, "rev-parse", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    second = git(repo, "rev-parse", "main")

    def merged(prp: str, commit: str) -> PrpRecord:
        info = PrpInfo(id=prp, title=prp, stage=1, model="", phases=1, branch=prp, worktree="")
        return PrpRecord(info=info, merged_as=commit)

    guard = Guard(ce_git.Repo(repo), "main")
    records = [merged("A", first), merged("B", second)]
    calls: list[list[str]] = []  # the commits of each check: one git process each
    real = ce_git.Repo.unreachable

    def counted(self: ce_git.Repo, commits: Sequence[str], ref: str) -> set[str]:
        calls.append(list(commits))
        return real(self, commits, ref)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ce_git.Repo, "unreachable", counted)
        assert guard.lost(records) == []
        assert [sorted(c) for c in calls] == [sorted([first, second])]
        calls.clear()
        git(repo, "commit", "-q", "--allow-empty", "-m", "three")
        assert guard.lost(records) == []
        assert calls == [[second]]  # only: is the tip it checked still under the new one
    git(repo, "reset", "-q", "--hard", first)  # someone moved main back past B
    assert guard.lost(records) == ["B"]
