"""A retried run killed (SIGKILL) at every journal write, then `--resume`d: it ends exactly as
an uninterrupted retry — the PRP run again once from the target, its earlier attempt kept on
one `-attempt-1` branch (never a second), each PRP merged once, nothing else left behind."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchkit import git, make_batch_repo
from test_crash import CONFIG, assert_unlocked, ce
from test_retry_prp import specs

KEPT = "prp-7-2-1-bravo-attempt-1"


def failed_once(base: Path) -> tuple[Path, Path, str]:
    """The repository after a run where Bravo failed (Delta skipped); the flag that lets Bravo
    pass, and Bravo's earlier head."""
    flag = base / "flags" / "bravo-ok"
    repo = make_batch_repo(base / "repo", specs(flag), config=CONFIG)
    assert ce(repo, "--continue-on-error").returncode == 1
    flag.parent.mkdir()
    flag.touch()
    return repo, flag, git(repo, "rev-parse", "prp-7-2-1-bravo")


def journal_lines(repo: Path) -> int:
    return len((repo / ".ce/tmp/batch-7.journal.jsonl").read_text().splitlines())


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """The uninterrupted retry: its target's files, and the journal writes until the retried
    PRP merged (those after it are any resumed run's, which tests/test_crash.py kills at)."""
    repo, _, _ = failed_once(tmp_path_factory.mktemp("reference"))
    before = journal_lines(repo)
    done = ce(repo, "--retry-prp", "7.2.1")
    assert done.returncode == 0, done.stderr
    lines = (repo / ".ce/tmp/batch-7.journal.jsonl").read_text().splitlines()[before:]
    entries = [json.loads(line) for line in lines]
    merged = next(
        n for n, e in enumerate(entries, 1) if e.get("fact") == "merged" and e["prp"] == "PRP-7.2.1"
    )
    return work_tree(repo), merged


def work_tree(repo: Path) -> str:
    """main's files and their contents, but the PRP files (each repository's Bravo names its
    own flag)."""
    listing = git(repo, "ls-tree", "-r", "main").splitlines()
    return "\n".join(line for line in listing if "\tPRPs/" not in line)


def assert_exact(repo: Path, tree: str, earlier: str) -> None:
    assert work_tree(repo) == tree
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    for prp_id in ("PRP-7.1.1", "PRP-7.2.1", "PRP-7.3.1"):
        assert sum(s.startswith(f"Merge {prp_id}:") for s in subjects) == 1, prp_id
    for n in (1, 2):
        assert sum(s.startswith(f"PRP-7.2.1: Phase {n} - ") for s in subjects) == 1
    assert git(repo, "branch", "--format=%(refname:short)").split() == ["main", KEPT]
    assert git(repo, "rev-parse", KEPT) == earlier  # the earlier attempt, whole
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    checkpoint = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    bravo = checkpoint["stages"]["2"]["results"]["PRP-7.2.1"]
    assert bravo["kept_branches"] == [KEPT]
    assert_unlocked(repo)


def kill_at(base: Path, k: int, tree: str) -> bool:
    repo, _, earlier = failed_once(base / f"k{k}")
    killed = ce(repo, "--retry-prp", "7.2.1", env={"CE_TEST_KILL_AT": str(k)})
    if killed.returncode == 0:
        return False
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    for _ in range(3):
        if ce(repo, "--resume").returncode == 0:
            break
    else:
        raise AssertionError(f"k={k}: not finished after 3 resumes")
    assert_exact(repo, tree, earlier)
    return True


def test_sigkill_at_every_journal_write_of_a_retry_then_resume(
    tmp_path: Path, reference: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    tree, writes = reference
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        survived = list(pool.map(lambda k: kill_at(tmp_path, k, tree), range(1, writes + 1)))
    with capsys.disabled():
        print(f"\nretry kill points survived: {sum(survived)} of {writes} journal writes")
    assert all(survived)
