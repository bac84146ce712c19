"""Resume always has a way forward (issue 13, I8; cases 13, 14 and 15).

Each test leaves a repository the way a crash leaves it (kill -9 at a journal write, or at a
named point between two, then the debris a power cut adds: a git process killed mid-command),
and checks that `--resume` repairs what is ce's own and finishes: every PRP merged once,
nothing left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from batchkit import Spec, assert_merged_once, git, make_batch_repo, write

CONFIG = """\
executor = "script"
max_parallel = 1
[monitor]
poll_seconds = 0.1
grace_seconds = 0.3
"""
ALPHA = Spec(
    id="PRP-5.1.1",
    title="Alpha",
    phases=[[write("a.txt", "a")], [write("a2.txt", "a2")]],
    files=["a.txt", "a2.txt"],
)
BRAVO = Spec(id="PRP-5.1.2", title="Bravo", phases=[[write("b.txt", "b")]], files=["b.txt"])
SPECS = [ALPHA, BRAVO]


def ce(
    repo: Path, *args: str, kill_after: str | None = None, kill_point: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if kill_after is not None:
        env["CE_TEST_KILL_AFTER"] = kill_after
    if kill_point is not None:
        env["CE_TEST_KILL_POINT"] = kill_point
    return subprocess.run(
        [sys.executable, "-m", "ce", *(args or ("batch-exe", "--batch", "5", "--quiet"))],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def resume(repo: Path) -> subprocess.CompletedProcess[str]:
    """Not --quiet: the warnings of what was repaired are printed."""
    return ce(repo, "batch-exe", "--batch", "5", "--resume")


def killed_at(
    tmp_path: Path,
    entry: str,
    prp: str,
    nth: int = 1,
    prepare: Callable[[Path], None] | None = None,
) -> Path:
    """A batch killed right after the `nth` journal entry `entry` (intent or fact) of `prp`,
    by name, whatever order the threads wrote the journal in."""
    repo = make_batch_repo(tmp_path / "repo", SPECS, batch="5", config=CONFIG)
    if prepare is not None:
        prepare(repo)
    killed = ce(repo, kill_after=f"{entry}:{prp}:{nth}")
    assert killed.returncode == -signal.SIGKILL, (entry, prp, killed.stdout + killed.stderr)
    last = (repo / ".ce/tmp/batch-5.journal.jsonl").read_text().splitlines()[-1]
    assert f'"{entry}"' in last and f'"prp": "{prp}"' in last, last
    return repo


def wait_idle(directory: Path, timeout: float = 30) -> None:
    """Until no process works in `directory` (an agent that outlived its killed ce)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_cwd_in(pid, directory) for pid in Path("/proc").iterdir()):
            return
        time.sleep(0.05)
    raise AssertionError(f"processes still work in {directory}")


def _cwd_in(entry: Path, directory: Path) -> bool:
    try:
        cwd = (entry / "cwd").readlink()
    except OSError:
        return False
    return cwd == directory or directory in cwd.parents


def admin_dir(repo: Path, worktree: Path) -> Path:
    """The worktree's administrative directory in the repository (`.git/worktrees/<name>`)."""
    for candidate in (repo / ".git" / "worktrees").iterdir():
        if (candidate / "gitdir").read_text().strip() == str(worktree / ".git"):
            return candidate
    raise AssertionError(f"{worktree} is not registered")


# -- case 13: what a power cut leaves ---------------------------------------------------------


def test_stale_index_lock_in_a_prp_worktree_is_removed_on_resume(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "launched", ALPHA.id)
    worktree = repo.parent / "repo-prp-5.1.1"
    wait_idle(worktree)  # the agent the kill left running must not race the forged lock
    (worktree / "a.txt").write_text("half\n")  # there is work to save first
    lock = admin_dir(repo, worktree) / "index.lock"
    lock.write_text("")  # a `git add` killed mid-write
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed stale" in done.stderr and "index.lock" in done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_index_lock_in_the_users_checkout_is_reported_not_removed(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "launched", ALPHA.id)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    done = resume(repo)
    assert lock.exists()  # the user's: never ce's to remove
    assert str(lock) in done.stderr and "remove it" in done.stderr, done.stderr
    lock.unlink()
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_half_created_integration_worktree_is_repaired(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "worktree", ALPHA.id, nth=2)
    integration = repo.parent / "repo-ce-integration"
    # `git worktree add` killed before it made the directory: registered, locked, missing.
    git(repo, "worktree", "add", "--detach", str(integration), "HEAD")
    (admin_dir(repo, integration) / "locked").write_text("initializing\n")
    shutil.rmtree(integration)
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_half_created_prp_worktree_is_repaired(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "launched", ALPHA.id)
    worktree = repo.parent / "repo-prp-5.1.2"
    # Bravo's worktree may have been made ahead while Alpha ran (`ce.run.ahead`): undone here,
    # to leave it as a `git worktree add -b` killed while checking out: locked, branch made, no
    # files.
    shutil.rmtree(worktree, ignore_errors=True)
    for undo in (["worktree", "prune"], ["branch", "-D", "prp-5-1-2-bravo"]):
        subprocess.run(["git", *undo], cwd=repo, capture_output=True, check=False)
    git(repo, "worktree", "add", "--no-checkout", "-b", "prp-5-1-2-bravo", str(worktree), "HEAD")
    (admin_dir(repo, worktree) / "locked").write_text("initializing\n")
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_half_removed_merged_worktree_is_repaired(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "remove-worktree", ALPHA.id)
    worktree = repo.parent / "repo-prp-5.1.1"
    # `git worktree remove` killed midway: some files and its `.git` gone, still registered.
    (worktree / ".git").unlink()
    (worktree / "a.txt").unlink()
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


# -- case 15: names are recorded when made, and reused ----------------------------------------


def alpha_file(repo: Path) -> Path:
    return repo / "PRPs" / "feature-requests" / "PRP-5.1.1-alpha.md"


def title_last(repo: Path) -> None:
    """Alpha's title at the end of its frontmatter: editing it on the target then does not
    touch the lines next to `status:`, which the PRP's own status commit changes."""
    prp = alpha_file(repo)
    text = prp.read_text().replace("title: Alpha\n", "")
    prp.write_text(text.replace("\n---\n", "\ntitle: Alpha\n---\n", 1))
    git(repo, "commit", "-qam", "title last")


def test_title_edited_between_kill_and_resume_keeps_the_recorded_branch(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "launched", ALPHA.id, prepare=title_last)
    prp = alpha_file(repo)
    prp.write_text(prp.read_text().replace("title: Alpha\n", "title: Alpha renamed\n"))
    git(repo, "commit", "-qam", "rename Alpha")
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert "Merge PRP-5.1.1: Alpha renamed" in subjects
    assert_merged_once(repo, [s.id for s in SPECS])


# -- case 14: a lost or damaged checkpoint is rebuilt from the journal and git ----------------


def test_resume_rebuilds_a_checkpoint_git_clean_removed(tmp_path: Path) -> None:
    # Killed once Alpha's merge is done (not midway through moving the user's checkout).
    repo = killed_at(tmp_path, "merged", ALPHA.id)
    git(repo, "clean", "-qfdx")  # .ce/tmp is gone: checkpoint and journal alike
    assert not (repo / ".ce" / "tmp").exists()
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilt it from git" in done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_a_truncated_checkpoint_is_explained_then_rebuilt_from_the_journal(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "merged", ALPHA.id)
    checkpoint = repo / ".ce" / "tmp" / "batch-execution-5.json"
    checkpoint.write_text(checkpoint.read_text()[:40])
    plain = ce(repo)
    assert plain.returncode == 2
    assert f"{checkpoint}: the checkpoint cannot be read" in plain.stderr
    assert "`ce batch-exe --batch 5 --resume` rebuilds it from the journal and git" in plain.stderr
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilt it from the journal and git" in done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


def test_cleanup_without_a_checkpoint_offers_the_resume_that_works(tmp_path: Path) -> None:
    repo = killed_at(tmp_path, "exited", BRAVO.id)  # Bravo's work committed, not merged
    git(repo, "clean", "-qfdx")
    kept = ce(repo, "cleanup", "--batch", "5")
    assert kept.returncode == 1
    assert "kept PRP-5.1.2: " in kept.stderr  # its commits, or its uncommitted work
    assert "kept the checkpoint" not in kept.stderr  # there is none
    assert "--resume can still continue it" in kept.stderr
    assert "`ce batch-exe --batch 5 --resume` (it rebuilds the checkpoint" in kept.stderr
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])


# Each window of the advance in the user's checkout (`ce.run.index_lock`, `ce.run.advance`):
# a kill there leaves an index.lock the next run proves its own, or debris it removes.
ADVANCE_WINDOWS = (
    "advance:pinned",  # ce's own lock file made, no record yet, index.lock not taken
    "advance:recorded",  # the record written, index.lock not taken
    "advance:locked",  # index.lock taken, the ref not moved
    "advance:swapped",  # the ref moved, the checkout not touched yet
    "advance:checked-out",  # the files written, the new index not in place
    "advance:installed",  # the new index in place, index.lock still there
    "advance:unlocked",  # index.lock given back, the record still there
)


@pytest.mark.parametrize("window", ADVANCE_WINDOWS)
def test_a_kill_in_each_window_of_the_advance_resumes(tmp_path: Path, window: str) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS, batch="5", config=CONFIG)
    killed = ce(repo, kill_point=window)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = resume(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_merged_once(repo, [s.id for s in SPECS])
    assert not (repo / ".git" / "index.lock").exists()
    assert not list((repo / ".git").glob("*ce-advance*"))
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "a2.txt").read_text() == "a2\n" and (repo / "b.txt").read_text() == "b\n"
