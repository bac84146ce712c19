"""`ce status` and `ce cleanup` after real runs: finished, paused, failed, running, and after
an earlier run whose checkpoint is gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import CHILD_ENV, branches, ce, worktrees

LENIENT = 'executor = "script"\n[validate]\ndrift_threshold = 100\n[monitor]\npoll_seconds = 0.2\n'

# One and Two both write same.txt (undeclared): Two conflicts and pauses the batch; After
# (stage 2) never starts.
PAUSING = [
    *(
        Spec(
            id=f"PRP-7.1.{n}",
            title=word,
            phases=[[write(f"{n}.txt", word)], [write("same.txt", word)]],
            files=[f"{n}.txt"],
            order=n,
        )
        for n, word in ((1, "One"), (2, "Two"))
    ),
    Spec(
        id="PRP-7.2.1",
        title="After",
        deps=["PRP-7.1.2"],
        phases=[[write("z.txt", "z")]],
        files=["z.txt"],
    ),
]


def paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    repo = make_batch_repo(tmp_path / "repo", PAUSING, config=LENIENT)
    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")
    assert result.code == 1 and "PAUSED" in result.out
    return repo


def test_status_of_a_finished_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING[:1], config=LENIENT)
    assert ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7").code == 0
    merge = git(repo, "log", "--format=%H", "--grep=^Merge PRP-7.1.1", "main")

    text = ce(repo, monkeypatch, capsys, "status")
    data = ce(repo, monkeypatch, capsys, "status", "--batch", "7", "--json")

    assert text.code == 0 and data.code == 0
    assert text.out.startswith("Batch 7: COMPLETED (target main)\n")
    assert "PRP-7.1.1  merged  2/2" in text.out
    assert merge[:10] in text.out
    (batch,) = data.json()["batches"]
    assert batch["status"] == "COMPLETED" and batch["running"] is None
    (prp,) = batch["prps"]
    assert prp == {
        "id": "PRP-7.1.1",
        "state": "merged",
        "phases_done": 2,
        "phases_total": 2,
        "branch": "prp-7-1-1-one",
        "branch_exists": False,
        "worktree": str(tmp_path / "repo-prp-7.1.1"),
        "worktree_exists": False,
        "last_commit_age": None,
        "merged_as": merge,
        "error": None,
    }


def test_status_of_a_paused_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = paused(tmp_path, monkeypatch, capsys)
    worktree = str(tmp_path / "repo-prp-7.1.2")

    text = ce(repo, monkeypatch, capsys, "status", "--batch", "7")
    data = ce(repo, monkeypatch, capsys, "status", "--json")

    assert text.code == 0
    assert text.out.startswith("Batch 7: PAUSED, not running: continue with --resume")
    row = next(line for line in text.out.splitlines() if line.startswith("PRP-7.1.2 "))
    assert row.split()[:5] == ["PRP-7.1.2", "conflict", "2/2", "prp-7-1-2-two", worktree]
    assert row.split()[6] == "ago"  # "3s ago": its last commit
    assert "PRP-7.1.2: merge conflict in same.txt" in text.out
    assert f"cd {worktree}" in text.out  # the pause reason says how to resolve
    (batch,) = data.json()["batches"]
    assert batch["status"] == "PAUSED" and batch["running"] is None
    assert "--resume" in batch["pause_reason"]
    prps = {p["id"]: p for p in batch["prps"]}
    assert prps["PRP-7.1.1"]["state"] == "merged" and prps["PRP-7.1.1"]["merged_as"]
    two = prps["PRP-7.1.2"]
    assert (two["state"], two["phases_done"], two["branch_exists"]) == ("conflict", 2, True)
    assert two["worktree_exists"] and 0 <= two["last_commit_age"] < 60
    assert two["merged_as"] is None
    after = prps["PRP-7.2.1"]
    assert (after["state"], after["phases_done"], after["phases_total"]) == ("pending", 0, 1)
    assert not after["branch_exists"] and not after["worktree_exists"]


def test_status_without_any_batch_and_of_an_unknown_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING, config=LENIENT)

    none = ce(repo, monkeypatch, capsys, "status")
    unknown = ce(repo, monkeypatch, capsys, "status", "--batch", "9", "--json")
    empty = ce(repo, monkeypatch, capsys, "status", "--json")

    assert (none.code, none.out) == (0, "No batch has been run in this repository.\n")
    assert unknown.code == 2 and "No checkpoint for batch 9" in unknown.err
    assert unknown.json()["status"] == "ERROR"
    assert (empty.code, empty.json()) == (0, {"batches": []})
    assert not (repo / ".ce" / "tmp").exists()


def test_cleanup_of_a_paused_batch_keeps_unmerged_work_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = paused(tmp_path, monkeypatch, capsys)
    state = repo / ".ce" / "tmp"
    worktree = tmp_path / "repo-prp-7.1.2"

    kept = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")

    assert kept.code == 1
    assert kept.out == ""  # nothing else was left: One merged and was cleaned by the run
    assert (
        f"kept PRP-7.1.2: branch prp-7-1-2-two has commits not on main (worktree {worktree}); "
        "use --force to delete it" in kept.err
    )
    assert "--resume can still continue it" in kept.err
    assert branches(repo) == ["main", "prp-7-1-2-two"] and worktree.is_dir()
    assert (state / "batch-execution-7.json").exists()

    forced = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7", "--force")

    assert forced.code == 0, forced.err
    assert forced.out.splitlines() == [
        f"removed worktree {worktree}",
        "deleted branch prp-7-1-2-two",
        f"removed {state / 'batch-execution-7.json'}",
        f"removed {state / 'batch-7.journal.jsonl'}",
        f"removed {state / 'run' / 'PRP-7.1.1'}",
        f"removed {state / 'run' / 'PRP-7.1.2'}",
    ]
    assert branches(repo) == ["main"] and worktrees(repo) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert git(repo, "status", "--porcelain") == ""
    assert ce(repo, monkeypatch, capsys, "cleanup").out == "Nothing to clean up.\n"
    # The batch starts over: One is done (completed on main); Two now starts from it.
    again = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")
    assert again.code == 0, again.err
    assert list(again.json()["prps"]) == ["PRP-7.1.2", "PRP-7.2.1"]


FAILING = [
    Spec(id="PRP-7.1.1", title="Broken", phases=[["echo oops >&2; exit 3"]], files=["x.txt"]),
    Spec(id="PRP-7.1.2", title="Fine", phases=[[write("f.txt", "f")]], files=["f.txt"]),
]


def test_cleanup_removes_a_failed_prp_without_commits_but_keeps_uncommitted_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", FAILING, config=LENIENT)
    assert (
        ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--continue-on-error").code == 1
    )
    worktree = tmp_path / "repo-prp-7.1.1"
    assert worktree.is_dir() and branches(repo) == ["main", "prp-7-1-1-broken"]
    (worktree / "notes.txt").write_text("half-done work\n")

    kept = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")

    assert kept.code == 1
    assert f"kept PRP-7.1.1: worktree {worktree} has uncommitted changes" in kept.err
    assert (worktree / "notes.txt").exists()
    (worktree / "notes.txt").unlink()

    removed = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")

    assert removed.code == 0, removed.err  # its branch holds nothing that is not on main
    assert f"removed worktree {worktree}\ndeleted branch prp-7-1-1-broken\n" in removed.out
    assert branches(repo) == ["main"] and not worktree.exists()


def test_cleanup_follows_the_advice_of_a_refused_run_even_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING, config=LENIENT)
    git(repo, "branch", "prp-7-2-1-after")  # left by a run whose state is gone
    integration = tmp_path / "repo-ce-integration"  # the lane's worktrees of a killed run
    git(repo, "worktree", "add", "-q", "--detach", str(integration), "main")
    second = tmp_path / "repo-ce-integration-2"  # merge_parallel > 1
    git(repo, "worktree", "add", "-q", "--detach", str(second), "main")

    refused = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")
    assert refused.code == 2 and "`ce cleanup --batch 7`" in refused.err

    cleaned = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")

    assert cleaned.code == 0, cleaned.err
    assert cleaned.out.splitlines() == [
        f"removed worktree {integration}",
        f"removed worktree {second}",
        "deleted branch prp-7-2-1-after",
    ]
    assert branches(repo) == ["main"] and worktrees(repo) == 1
    assert ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7").code == 1  # runs (pauses)


def test_cleanup_of_an_unknown_batch_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING, config=LENIENT)

    result = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "9")

    assert result.code == 2
    assert "No checkpoint for batch 9" in result.err


def test_status_shows_a_running_batch_and_cleanup_refuses_to_touch_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = [Spec(id="PRP-7.1.1", title="Slow", phases=[["sleep 30"], [write("s.txt", "s")]])]
    repo = make_batch_repo(tmp_path / "repo", slow, config=LENIENT)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worktree = tmp_path / "repo-prp-7.1.1"
        deadline = time.monotonic() + 30
        while not (worktree / ".git").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        status = ce(repo, monkeypatch, capsys, "status", "--json")
        text = ce(repo, monkeypatch, capsys, "status")
        cleanup = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7", "--force")

        (batch,) = status.json()["batches"]
        log = repo / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log"
        assert batch["status"] == "IN_PROGRESS", log.read_text()
        assert batch["running"]["pid"] == child.pid
        assert f"IN_PROGRESS, running now (pid {child.pid}, since " in text.out
        assert cleanup.code == 2
        assert f"batch 7 (pid {child.pid}" in cleanup.err
        assert worktree.is_dir()
    finally:
        child.terminate()  # stops like Ctrl-C: agents stopped, state saved
        assert child.wait(timeout=60) == 130
    after = ce(repo, monkeypatch, capsys, "status")
    assert after.out.startswith("Batch 7: INTERRUPTED, not running: continue with --resume")


def test_a_damaged_checkpoint_is_reported_and_cleanup_clears_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING[:1], config=LENIENT)
    assert ce(repo, monkeypatch, capsys, "execute-prp", "PRP-7.1.1").code == 0
    state = repo / ".ce" / "tmp"
    # A sound checkpoint beside the damaged one: still shown.
    (state / "batch-execution-7.json").rename(state / "batch-execution-6.json")
    (state / "batch-execution-7.json").write_text('{"version": 1, "status": "PAU')

    status = ce(repo, monkeypatch, capsys, "status")
    refused = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")

    assert status.code == 0
    assert "Batch 7: COMPLETED (target main)" in status.out  # read from batch-execution-6
    assert "Batch 7: UNREADABLE\n  " in status.out and "cannot be read" in status.out
    assert refused.code == 2 and "`ce cleanup`" in refused.err

    cleaned = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")

    assert cleaned.code == 0
    assert cleaned.out.splitlines() == [
        f"removed {state / 'batch-execution-7.json'}",
        f"removed {state / 'batch-7.journal.jsonl'}",
        f"removed {state / 'run' / 'PRP-7.1.1'}",
    ]
    again = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")
    assert again.code == 0 and "nothing to do" in again.err


def test_cleanup_never_deletes_a_directory_that_is_not_a_worktree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", PAUSING, config=LENIENT)
    mine = tmp_path / "repo-prp-7.2.1"
    mine.mkdir()
    (mine / "precious.txt").write_text("the user's\n")
    assert ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7").code == 2

    result = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7", "--force")

    assert result.code == 1
    assert (
        f"kept PRP-7.2.1: {mine} is not a worktree of this repository; "
        "move or remove it yourself" in result.err
    )
    assert (mine / "precious.txt").read_text() == "the user's\n"


def _start_batch(repo: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _watch(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    until: Callable[[dict[str, dict[str, Any]]], object],
) -> dict[str, Any]:
    """`ce status --json`'s batch, polled until `until` holds of its PRPs (by id; 30 s at most)."""
    seen: dict[str, Any] | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: dict[str, Any] = ce(repo, monkeypatch, capsys, "status", "--json").json()
        batches = status["batches"]
        if batches:
            seen = batches[0]
            if until({prp["id"]: prp for prp in seen["prps"]}):
                return seen
        time.sleep(0.1)
    raise AssertionError(f"never got there; last seen {seen}")


def _wait_for(path: Path) -> str:
    """A bash block that waits until the test creates `path`."""
    return f"until [ -e {path} ]; do sleep 0.05; done"


def _phases_reach(n: int) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda prps: int(prps["PRP-7.1.1"]["phases_done"]) >= n


def test_status_counts_phase_commits_live_while_a_batch_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The checkpoint learns a PRP's phases when its agent ends; git has them as they land.
    # Each phase after the first waits for the test to have seen the one before.
    go = [tmp_path / "go-2", tmp_path / "go-3"]
    steps = [[write("a.txt", "a")], [_wait_for(go[0]), write("b.txt", "b")], [_wait_for(go[1])]]
    repo = make_batch_repo(
        tmp_path / "repo", [Spec(id="PRP-7.1.1", title="Steps", phases=steps)], config=LENIENT
    )
    child = _start_batch(repo)
    try:
        for done, then in enumerate(go, start=1):
            batch = _watch(repo, monkeypatch, capsys, _phases_reach(done))
            (prp,) = batch["prps"]
            assert (prp["phases_done"], prp["merged_as"]) == (done, None), batch
            assert batch["running"]["pid"] == child.pid
            then.touch()
        batch = _watch(repo, monkeypatch, capsys, lambda p: p["PRP-7.1.1"]["merged_as"])
    finally:
        for path in go:
            path.touch()
        child.terminate()
        child.wait(timeout=60)
    (prp,) = batch["prps"]
    assert (prp["state"], prp["phases_done"], prp["phases_total"]) == ("merged", 3, 3)


def test_status_of_a_killed_batch_shows_no_prp_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pid_file = tmp_path / "agent.pid"
    slow = [[write("b.txt", "b")], [f"echo $$ > {pid_file}\nsleep 60"], [write("c.txt", "c")]]
    specs = [
        Spec(id="PRP-7.1.1", title="Quick", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(id="PRP-7.1.2", title="Slow", phases=slow, files=["b.txt", "c.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=LENIENT)
    child = _start_batch(repo)
    try:
        # Quick's merge writes a checkpoint that has Slow running.
        _watch(
            repo,
            monkeypatch,
            capsys,
            lambda prps: prps["PRP-7.1.1"]["merged_as"] and pid_file.exists(),
        )
        os.kill(child.pid, signal.SIGKILL)  # no handler runs: the checkpoint says IN_PROGRESS
        child.wait(timeout=60)
        status = ce(repo, monkeypatch, capsys, "status", "--json")
        text = ce(repo, monkeypatch, capsys, "status")
    finally:
        child.kill()
        child.wait(timeout=60)
        if pid_file.exists():  # the agent outlives a killed ce; --resume would stop it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(int(pid_file.read_text())), signal.SIGKILL)

    checkpoint = json.loads((repo / ".ce" / "tmp" / "batch-execution-7.json").read_text())
    assert checkpoint["stages"]["1"]["results"]["PRP-7.1.2"]["state"] == "running"
    (batch,) = status.json()["batches"]
    assert (batch["status"], batch["running"]) == ("IN_PROGRESS", None)
    prps = {prp["id"]: prp for prp in batch["prps"]}
    assert prps["PRP-7.1.1"]["state"] == "merged"
    slow_prp = prps["PRP-7.1.2"]
    assert (slow_prp["state"], slow_prp["phases_done"], slow_prp["phases_total"]) == (
        "interrupted",
        1,
        3,
    )
    assert text.out.startswith("Batch 7: IN_PROGRESS, not running: continue with --resume")
    row = next(line for line in text.out.splitlines() if line.startswith("PRP-7.1.2 "))
    assert row.split()[1:3] == ["interrupted", "1/3"]
