"""The speculative lane with real git and real merged-tree checks that pass or fail on purpose
(issue 17 item 1): several trees checked at once, each on the one before; the target moves in
order and only to a tree that passed; a failure or a moved target rebuilds what was built on
it; a batch is checked once, and bisected when it fails."""

from __future__ import annotations

import json
import queue
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit import Spec, make_batch_repo, write
from ce import git
from ce.cli import run
from ce.config import ValidateConfig
from ce.run.merge import MergeLane, MergeOutcome, MergeRequest, MergeResult
from ce.run.speculation import Checked, LaneSettings, SpeculativeLane, Worktree
from ce.run.state import Journal

# Each check logs when it starts and ends (to see them overlap), holds for a moment, and fails
# when the tree has a file named bad*.
CHECK = "sh -c {}".format(
    shlex.quote(
        'echo "start $(date +%s.%N) $PWD" >> "$LOG"; sleep "${HOLD:-0.4}"; '
        'echo "end $(date +%s.%N) $PWD" >> "$LOG"; ! ls bad* >/dev/null 2>&1'
    )
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    r = git.Repo(root)
    r.git("init", "-q", "-b", "main")
    r.git("config", "user.name", "ce test")
    r.git("config", "user.email", "test@example.invalid")
    r.git("config", "core.hooksPath", "/dev/null")
    (root / "README.md").write_text("# test repo\n", encoding="utf-8")
    r.commit_all("initial")
    return root


def branch(repo: Path, n: int, file: str | None = None, text: str = "x\n") -> MergeRequest:
    """PRP-1.<n>'s branch off main adding `file` (default: its own)."""
    r = git.Repo(repo)
    name = f"prp-1-{n}"
    r.git("switch", "--quiet", "-c", name, "main")
    (repo / (file or f"f{n}.txt")).write_text(text, encoding="utf-8")
    head = r.commit_all(f"PRP-1.{n}: Phase 1 - work")
    assert head is not None
    r.git("switch", "--quiet", "main")
    return MergeRequest(prp_id=f"PRP-1.{n}", title=f"work {n}", branch=name, head=head)


_JOURNALS: list[Journal] = []


@pytest.fixture(autouse=True)
def _close_journals() -> Iterator[None]:
    yield
    while _JOURNALS:
        _JOURNALS.pop().close()


def run_line(
    repo: Path,
    requests: list[MergeRequest],
    *,
    parallel: int,
    batch: int = 1,
    check: str = CHECK,
    hold: str = "0.4",
) -> dict[str, MergeResult]:
    """Feed the requests to a speculative lane and run it until every PRP has its result."""
    journal = Journal(repo.parent / "journal.jsonl")
    _JOURNALS.append(journal)
    lane = MergeLane(
        checkout=git.Repo(repo),
        target="main",
        integration=repo.parent / "integration",
        config=ValidateConfig(level2="", level3=check, level4=""),
        journal=journal,
        listener=lambda _e: None,
        batch_id="7",
    )
    env = {"LOG": str(repo.parent / "checks.log"), "HOLD": hold, "PATH": "/usr/bin:/bin"}
    worktrees = [Worktree(path=repo.parent / f"integration-{n}", env=env) for n in range(parallel)]
    done: queue.Queue[Checked] = queue.Queue()
    results: dict[str, MergeResult] = {}
    order: list[str] = []

    def report(prp: str, result: MergeResult) -> None:
        results[prp] = result
        order.append(prp)

    settings = LaneSettings(parallel=parallel, batch=batch, worktrees=tuple(worktrees))
    line = SpeculativeLane(lane, settings, post=done.put, report=report)
    for request in requests:
        line.add(request)
    line.progress()
    while not line.idle():
        line.checked(done.get(timeout=60))
        line.progress()
    line.close()
    merged = [p for p in order if results[p].outcome is MergeOutcome.MERGED]
    assert merged == [r.prp_id for r in requests if r.prp_id in merged]  # in the order sent
    return results


def checks(repo: Path) -> list[tuple[str, float, str]]:
    log = repo.parent / "checks.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(kind, float(at), where) for kind, at, where in (line.split(" ", 2) for line in lines)]


def overlapped(repo: Path) -> bool:
    """Whether some check started before the one before it ended."""
    running, most = 0, 0
    for kind, _, _ in sorted(checks(repo), key=lambda c: c[1]):
        running += 1 if kind == "start" else -1
        most = max(most, running)
    return most > 1


def merged_subjects(repo: Path) -> list[str]:
    log = git.Repo(repo).git("log", "--first-parent", "--reverse", "--format=%s", "main").stdout
    return [s.split(":")[0] for s in log.splitlines() if s.startswith("Merge ")]


def test_trees_are_checked_at_once_and_land_in_order(repo: Path) -> None:
    requests = [branch(repo, n) for n in range(1, 5)]
    results = run_line(repo, requests, parallel=3)

    assert {r.outcome for r in results.values()} == {MergeOutcome.MERGED}
    assert merged_subjects(repo) == [f"Merge PRP-1.{n}" for n in range(1, 5)]
    assert overlapped(repo)  # the speculations were checked beside the head
    # The first merged tree is the first branch's own: validated already, not checked again.
    assert len([c for c in checks(repo) if c[0] == "start"]) == 3
    assert git.Repo(repo).ref_tips(["refs/ce/"]) == {}  # every held object released
    assert (repo / "f4.txt").read_text() == "x\n"  # the checkout came along


def test_a_failed_tree_rebuilds_what_was_built_on_it(repo: Path) -> None:
    requests = [branch(repo, 1), branch(repo, 2, "bad.txt"), branch(repo, 3), branch(repo, 4)]
    results = run_line(repo, requests, parallel=3)

    assert results["PRP-1.2"].outcome is MergeOutcome.INVALID
    assert not results["PRP-1.2"].validation["level_3"].passed
    assert merged_subjects(repo) == ["Merge PRP-1.1", "Merge PRP-1.3", "Merge PRP-1.4"]
    tree = git.Repo(repo).git("ls-tree", "--name-only", "main").stdout.split()
    assert "bad.txt" not in tree and {"f1.txt", "f3.txt", "f4.txt"} <= set(tree)
    # Every commit the target went through has a tree without bad.txt.
    for commit in git.Repo(repo).git("rev-list", "--first-parent", "main").stdout.split():
        assert git.Repo(repo).read_blob(commit, "bad.txt") is None


def test_a_discarded_check_is_stopped_not_waited_for(repo: Path) -> None:
    """PRP-1.3 is checked on top of PRP-1.2, whose own check fails at once: the check of 1.3 on
    1.2 (which would take a minute) is stopped, and 1.3 is checked again on the target and
    merged, without waiting for it."""
    slow = "59.7"  # a duration nothing else sleeps, to look for its process
    check = "sh -c {}".format(
        shlex.quote(f"if [ -f a.txt ] && [ -f b.txt ]; then sleep {slow}; fi; ! [ -f a.txt ]")
    )
    requests = [branch(repo, 1), branch(repo, 2, "a.txt"), branch(repo, 3, "b.txt")]
    started = time.monotonic()
    results = run_line(repo, requests, parallel=2, check=check)

    assert time.monotonic() - started < 30
    assert results["PRP-1.2"].outcome is MergeOutcome.INVALID
    assert results["PRP-1.3"].outcome is MergeOutcome.MERGED
    assert merged_subjects(repo) == ["Merge PRP-1.1", "Merge PRP-1.3"]
    deadline = time.monotonic() + 10  # SIGTERM went at once; what is left gets SIGKILL
    while time.monotonic() < deadline and f"sleep {slow}" in _processes():
        time.sleep(0.1)
    assert f"sleep {slow}" not in _processes()


def _processes() -> str:
    return subprocess.run(["ps", "-eo", "args"], check=True, capture_output=True, text=True).stdout


def test_when_the_target_moves_under_the_lane_everything_is_rebuilt_on_it(repo: Path) -> None:
    """The first check commits on main in the user's checkout: nothing built before lands,
    everything is merged on top of the user's commit."""
    moved = repo.parent / "moved"
    user_commit = (
        f"[ -e {moved} ] || {{ touch {moved}; "
        f"git -C {repo} -c user.name=u -c user.email=u@x commit -q --allow-empty -m user; }}"
    )
    check = "sh -c {}".format(shlex.quote(f"{user_commit}; sleep 0.3; ! ls bad* 2>/dev/null"))
    requests = [branch(repo, n) for n in range(1, 4)]
    (repo / "f0.txt").write_text("main moves\n")
    git.Repo(repo).commit_all("main moves first")  # so that the first tree is checked too
    results = run_line(repo, requests, parallel=2, check=check)

    assert {r.outcome for r in results.values()} == {MergeOutcome.MERGED}
    log = git.Repo(repo).git("log", "--first-parent", "--reverse", "--format=%s", "main").stdout
    subjects = log.splitlines()
    assert subjects.index("user") < subjects.index(next(s for s in subjects if "PRP-1.1" in s))
    assert merged_subjects(repo) == ["Merge PRP-1.1", "Merge PRP-1.2", "Merge PRP-1.3"]
    assert git.Repo(repo).git("status", "--porcelain", "--untracked-files=no").stdout == ""


def test_a_batch_is_checked_once_and_lands_by_its_merge_commits(repo: Path) -> None:
    requests = [branch(repo, n) for n in range(1, 9)]
    (repo / "f0.txt").write_text("main moves\n")
    git.Repo(repo).commit_all("main moves first")
    results = run_line(repo, requests, parallel=1, batch=4)

    assert {r.outcome for r in results.values()} == {MergeOutcome.MERGED}
    assert merged_subjects(repo) == [f"Merge PRP-1.{n}" for n in range(1, 9)]
    assert len([c for c in checks(repo) if c[0] == "start"]) == 2  # two trees of four
    # One compare-and-swap per batch: the reflog moved twice (plus the commit above).
    reflog = git.Repo(repo).git("reflog", "--format=%gs", "refs/heads/main").stdout.splitlines()
    assert reflog.count("ce: merge") == 2


def test_a_failed_batch_is_bisected_to_its_culprit_and_the_rest_merged(repo: Path) -> None:
    requests = [branch(repo, n, "bad.txt" if n == 3 else None) for n in range(1, 9)]
    (repo / "f0.txt").write_text("main moves\n")
    git.Repo(repo).commit_all("main moves first")
    results = run_line(repo, requests, parallel=2, batch=4, hold="0.1")

    assert results["PRP-1.3"].outcome is MergeOutcome.INVALID
    assert merged_subjects(repo) == [f"Merge PRP-1.{n}" for n in (1, 2, 4, 5, 6, 7, 8)]
    for commit in git.Repo(repo).git("rev-list", "--first-parent", "main").stdout.split():
        assert git.Repo(repo).read_blob(commit, "bad.txt") is None


def test_a_conflict_inside_a_batch_is_set_apart_and_the_rest_merged(repo: Path) -> None:
    requests = [
        branch(repo, 1),
        branch(repo, 2, "same.txt", "two\n"),
        branch(repo, 3, "same.txt", "three\n"),
        branch(repo, 4),
    ]
    results = run_line(repo, requests, parallel=2, batch=4, hold="0.1")

    assert results["PRP-1.3"].outcome is MergeOutcome.CONFLICT
    assert results["PRP-1.3"].conflicts == ("same.txt",)
    assert merged_subjects(repo) == ["Merge PRP-1.1", "Merge PRP-1.2", "Merge PRP-1.4"]
    assert (repo / "same.txt").read_text() == "two\n"


def test_a_batch_run_with_speculation_merges_the_rest_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `ce batch-exe`: two trees checked at once; the PRP whose merged tree fails is
    partial (its worktree kept), the others merged in plan order; both integration worktrees
    are removed at the end."""
    # The branches pass; only the merged tree (in an integration worktree) is judged.
    check = "sh -c 'case $PWD in *-ce-integration*) sleep 0.3; ! ls bad* >/dev/null 2>&1;; esac'"
    config = (
        f'executor = "script"\nmax_parallel = 4\nmerge_parallel = 2\nauto_review = false\n'
        f'[validate]\nlevel2 = ""\nlevel4 = "{check}"\n[monitor]\npoll_seconds = 0.2\n'
    )
    specs = [
        Spec(id=f"PRP-7.1.{n}", title=f"W{n}", phases=[[write(name, "x")]], files=[name], order=n)
        for n, name in enumerate(["a.txt", "b.txt", "bad.txt", "d.txt", "e.txt"], start=1)
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    monkeypatch.chdir(repo)
    code = run(["batch-exe", "--batch", "7", "--continue-on-error", "--json"])

    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["prps"]["PRP-7.1.3"]["state"] == "partial"
    assert "merged tree failed L4" in summary["prps"]["PRP-7.1.3"]["error"]
    assert merged_subjects(repo) == [f"Merge PRP-7.1.{n}" for n in (1, 2, 4, 5)]
    assert not (tmp_path / "repo-ce-integration").exists()
    assert not (tmp_path / "repo-ce-integration-2").exists()
    assert git.Repo(repo).ref_tips(["refs/ce/"]) == {}
