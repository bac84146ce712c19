"""Worktrees made ahead (`ce.run.ahead`): while the only slot is taken, the next PRP's worktree
is made, so that a freed slot is a launch at once; a run that ends without starting it removes
it again. Real git, real child processes: each first PRP's block waits until the next one's
worktree exists, which proves it was made while the first ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import Spec, assert_merged_once, git, make_batch_repo, write
from ce.cli import run

ONE_SLOT = 'executor = "script"\nmax_parallel = 1\n[validate]\ndrift_threshold = 100\n'


def wait_for(path: str) -> str:
    """A bash block that waits (up to 20 s) until `path` exists, and fails if it never does."""
    return f"for _ in $(seq 200); do [ -e {path} ] && exit 0; sleep 0.1; done; exit 1"


def waiting(repo: Path, number: int, title: str, then: str) -> Spec:
    """PRP-7.1.<number>, whose block waits for the next PRP's worktree, then runs `then`."""
    upcoming = f"{repo}-prp-7.1.{number + 1}/.git"
    return Spec(
        id=f"PRP-7.1.{number}",
        title=title,
        phases=[[wait_for(upcoming), then]],
        files=[f"{title.lower()}.txt"],
    )


def journal(repo: Path) -> list[dict[str, object]]:
    lines = (repo / ".ce" / "tmp" / "batch-7.journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_next_worktree_is_made_while_the_only_slot_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    specs = [
        waiting(repo, 1, "One", write("one.txt", "1")),
        waiting(repo, 2, "Two", write("two.txt", "2")),
        Spec(
            id="PRP-7.1.3", title="Three", phases=[[write("three.txt", "3")]], files=["three.txt"]
        ),
    ]
    make_batch_repo(repo, specs, config=ONE_SLOT)
    monkeypatch.chdir(repo)
    assert run(["batch-exe", "--batch", "7", "--quiet"]) == 0
    assert_merged_once(repo, [s.id for s in specs])
    for name in ("one.txt", "two.txt", "three.txt"):
        assert (repo / name).is_file()
    # Each worktree was made (journal: fact) before the PRP ahead of it was judged, and its
    # base is a commit of the target (the tip when it was made).
    facts = journal(repo)
    order = [(e["fact"], e.get("prp")) for e in facts if "fact" in e]
    assert order.index(("worktree", "PRP-7.1.2")) < order.index(("exited", "PRP-7.1.1"))
    assert order.index(("worktree", "PRP-7.1.3")) < order.index(("exited", "PRP-7.1.2"))
    main = set(git(repo, "rev-list", "main").split())
    assert all(e["base"] in main for e in facts if e.get("fact") == "worktree")


def test_a_worktree_made_for_a_prp_that_never_starts_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    specs = [
        waiting(repo, 1, "One", "exit 3"),  # fails once the next worktree is there: the end
        Spec(id="PRP-7.1.2", title="Two", phases=[[write("two.txt", "2")]], files=["two.txt"]),
    ]
    make_batch_repo(repo, specs, config=ONE_SLOT)
    monkeypatch.chdir(repo)
    assert run(["batch-exe", "--batch", "7", "--quiet"]) == 1
    assert not Path(f"{repo}-prp-7.1.2").exists()
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert "prp-7-1-2-two" not in branches and "prp-7-1-1-one" in branches  # the failed kept
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 2
    removed = [e for e in journal(repo) if e.get("intent") == "remove-worktree"]
    assert [e["prp"] for e in removed] == ["PRP-7.1.2"]
