"""The merge lane under a user who switches, commits and locks meanwhile (issue 13, I1, I5, I6).

Real git in temporary repositories; where a race must fall at one exact instant, one git-layer
method is wrapped to do the user's action right then.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from batchkit import hold_index_lock, kill_holder, killed_under_index_lock
from ce import git
from ce.config import ValidateConfig
from ce.core.events import Event, MergeStep
from ce.run import advance
from ce.run.merge import MergeLane, MergeOutcome, MergeRequest
from ce.run.state import Journal

PRP = "PRP-1.1"
T = TypeVar("T")


def _branch(repo: Path, name: str = "prp-1-1-work", file: str = "work.py") -> MergeRequest:
    """A PRP branch off main adding `file`; the user's checkout stays on main."""
    r = git.Repo(repo)
    r.git("switch", "--quiet", "-c", name)
    (repo / file).write_text("x = 1\n", encoding="utf-8")
    head = r.commit_all(f"{PRP}: Phase 1 - work")
    assert head is not None
    r.git("switch", "--quiet", "main")
    return MergeRequest(prp_id=PRP, title="work", branch=name, head=head)


_JOURNALS: list[Journal] = []


@pytest.fixture(autouse=True)
def _close_journals() -> Iterator[None]:
    yield
    while _JOURNALS:
        _JOURNALS.pop().close()


def _lane(repo: Path, listener: Callable[[Event], None] = lambda _e: None) -> MergeLane:
    _JOURNALS.append(Journal(repo.parent / "journal.jsonl"))
    return MergeLane(
        checkout=git.Repo(repo),
        target="main",
        integration=repo.parent / "integration",
        config=ValidateConfig(level2="", level3="", level4=""),
        journal=_JOURNALS[-1],
        listener=listener,
        batch_id="7",
    )


def _on_advance(action: Callable[[], None]) -> Callable[[Event], None]:
    """A listener doing `action` the first time the lane is about to advance (after
    commit-tree)."""
    done: list[bool] = []

    def listen(event: Event) -> None:
        if isinstance(event, MergeStep) and event.step == "advance" and not done:
            done.append(True)
            action()

    return listen


def _consistent(repo: Path) -> None:
    """HEAD, index and files agree: nothing staged, nothing changed, nothing untracked."""
    assert git.Repo(repo).git("status", "--porcelain").stdout == ""


def _wrap_once(
    monkeypatch: pytest.MonkeyPatch, name: str, armed: threading.Event, action: Callable[[], object]
) -> None:
    """After the lane armed `armed`, the first call of `git.Repo.<name>` does `action` first."""
    original = getattr(git.Repo, name)

    def wrapped(self: git.Repo, *args: object, **kwargs: object) -> object:
        if armed.is_set():
            armed.clear()
            action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(git.Repo, name, wrapped)


def test_a_switch_during_the_advance_never_lands_the_merge_on_the_other_branch(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 1: the user runs `git switch feature` after ce found main checked out."""
    user = git.Repo(repo)
    user.git("branch", "feature")
    feature = user.rev_parse("feature")
    req = _branch(repo)
    armed = threading.Event()
    switched: list[str] = []

    def switch() -> None:
        user.git("switch", "--quiet", "feature")
        switched.append("feature")

    # ce has looked at HEAD (main); the switch falls between that look and the advance.
    original = git.Repo.current_branch

    def looked(self: git.Repo) -> str | None:
        answer = original(self)
        if armed.is_set():
            armed.clear()
            switch()
        return answer

    monkeypatch.setattr(git.Repo, "current_branch", looked)
    result = _lane(repo, _on_advance(armed.set)).merge(req)

    assert switched == ["feature"]
    assert result.outcome is MergeOutcome.MERGED
    assert user.rev_parse("feature") == feature  # the merge did not land on feature
    assert user.is_ancestor(req.head, "main")
    assert user.current_branch() == "feature"
    _consistent(repo)
    assert not (repo / "work.py").exists()  # feature's files, not main's


def test_the_reverse_race_a_switch_to_main_as_it_moves_brings_the_checkout_along(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 1, reversed: no checkout held main when ce looked; the user switches to it just as
    ce moves it by update-ref. The checkout must not be left HEAD = merge, files = old."""
    user = git.Repo(repo)
    req = _branch(repo)
    user.git("switch", "--quiet", "-c", "feature")
    armed = threading.Event()
    _wrap_once(monkeypatch, "update_ref", armed, lambda: user.git("switch", "--quiet", "main"))

    result = _lane(repo, _on_advance(armed.set)).merge(req)

    assert result.outcome is MergeOutcome.MERGED
    assert user.current_branch() == "main"
    assert user.rev_parse("HEAD") == result.tip
    _consistent(repo)
    assert (repo / "work.py").read_text(encoding="utf-8") == "x = 1\n"


def test_the_checkout_on_main_is_fast_forwarded_without_running_its_hooks(repo: Path) -> None:
    """The ordinary case, and case 9: a post-merge hook that sleeps does not block the lane."""
    user = git.Repo(repo)
    req = _branch(repo)
    _install_hooks(repo, "post-merge", "post-checkout")
    done = _in_thread(lambda: _lane(repo).merge(req))
    result = done()
    assert result.outcome is MergeOutcome.MERGED
    assert user.rev_parse("HEAD") == result.tip
    assert (repo / "work.py").is_file()
    _consistent(repo)


def test_hooks_never_run_in_the_integration_worktree(repo: Path) -> None:
    """Case 9: a post-checkout hook in the repository does not block the integration worktree
    (created for the first merged-tree check, checked out again for the next)."""
    user = git.Repo(repo)
    first = _branch(repo)
    second = _branch(repo, "prp-1-2-more", "more.py")
    (repo / "main.py").write_text("y = 2\n", encoding="utf-8")
    user.commit_all("main moves: the merged trees are new and get checked")
    _install_hooks(repo, "post-checkout", "post-merge")
    lane = _lane(repo)
    lane.config = ValidateConfig(level2=None, level3="true", level4="")

    def both() -> list[MergeOutcome]:
        return [lane.merge(first).outcome, lane.merge(second).outcome]

    assert _in_thread(both)() == [MergeOutcome.MERGED, MergeOutcome.MERGED]
    assert (repo.parent / "integration" / "more.py").is_file()


def test_a_stale_ref_lock_leaves_the_checkout_untouched_and_says_what_to_do(repo: Path) -> None:
    """Case 2 and 16: `refs/heads/main.lock` made `merge --ff-only` rewrite index and files and
    then fail to move the ref."""
    user = git.Repo(repo)
    req = _branch(repo)
    before = user.rev_parse("main")
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("", encoding="utf-8")

    result = _lane(repo).merge(req)

    assert result.outcome is MergeOutcome.BLOCKED
    assert user.rev_parse("main") == before
    _consistent(repo)
    assert not (repo / "work.py").exists()
    assert "File exists" in result.message  # what git said
    assert f"remove {lock}" in result.message  # what to do
    assert "local changes" not in result.message


def test_a_busy_index_blocks_with_its_own_message(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 16: index.lock (another git command, or a stale lock) is named as such."""
    monkeypatch.setattr(advance, "_LOCK_WAIT_SECONDS", 0.2)
    user = git.Repo(repo)
    req = _branch(repo)
    before = user.rev_parse("main")
    (repo / ".git" / "index.lock").write_text("", encoding="utf-8")

    result = _lane(repo).merge(req)

    assert result.outcome is MergeOutcome.BLOCKED
    assert user.rev_parse("main") == before
    assert "index.lock exists" in result.message
    assert (repo / ".git" / "index.lock").exists()  # not ours: never removed


def test_core_bare_and_untracked_files_block_with_their_own_messages(repo: Path) -> None:
    """Case 16: `core.bare` and an untracked file in the way each say what they are."""
    user = git.Repo(repo)
    req = _branch(repo)
    before = user.rev_parse("main")
    (repo / "work.py").write_text("mine\n", encoding="utf-8")
    in_the_way = _lane(repo).merge(req)
    assert in_the_way.outcome is MergeOutcome.BLOCKED
    assert "work.py" in in_the_way.message and "would be overwritten" in in_the_way.message
    assert (repo / "work.py").read_text(encoding="utf-8") == "mine\n"
    (repo / "work.py").unlink()

    user.git("config", "core.bare", "true")
    bare = _lane(repo).merge(req)
    user.git("--work-tree=.", "config", "core.bare", "false")
    assert bare.outcome is MergeOutcome.BLOCKED
    assert "core.bare" in bare.message
    assert user.rev_parse("main") == before
    _consistent(repo)


def test_gc_between_commit_tree_and_the_advance_loses_nothing(repo: Path) -> None:
    """Case 7 / I5: the merge commit is held by refs/ce/<batch>/merge/<prp> until the advance;
    the refs are dropped once merged."""
    user = git.Repo(repo)
    req = _branch(repo)
    user.git("switch", "--quiet", "-c", "elsewhere")  # main moves by update-ref alone
    held: list[dict[str, str]] = []

    def listen(event: Event) -> None:
        if isinstance(event, MergeStep) and event.step == "advance":
            held.append(user.ref_tips(["refs/ce/"]))
            user.git("gc", "--quiet", "--prune=now")

    result = _lane(repo, listen).merge(req)

    assert result.outcome is MergeOutcome.MERGED
    assert held == [{"refs/ce/7/head/PRP-1.1": req.head, "refs/ce/7/merge/PRP-1.1": result.commit}]
    user.git("fsck", "--no-dangling", "--no-progress")
    assert user.read_blob("main", "work.py") == "x = 1\n"
    assert user.ref_tips(["refs/ce/"]) == {}


def test_release_drops_the_refs_of_a_prp_that_was_not_merged(repo: Path) -> None:
    user = git.Repo(repo)
    req = _branch(repo)
    (repo / "main.py").write_text("y = 2\n", encoding="utf-8")
    user.commit_all("main moves")
    lane = _lane(repo)
    lane.config = ValidateConfig(level2="", level3="false", level4="")
    assert lane.merge(req).outcome is MergeOutcome.INVALID
    held = {"refs/ce/7/head/PRP-1.1", "refs/ce/7/merge/PRP-1.1"}
    assert set(user.ref_tips(["refs/ce/7/"])) == held
    lane.release(PRP)
    assert user.ref_tips(["refs/ce/"]) == {}


def test_every_git_call_has_a_time_limit(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 9 / I6: a git call that hangs (here: reading a FIFO) fails with its command named."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv("CE_GIT_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(git.GitError, match=r"timed out after 1s.*CE_GIT_TIMEOUT") as caught:
        git.Repo(repo).git("hash-object", str(fifo))
    assert "git hash-object" in str(caught.value)
    assert time.monotonic() - started < 10


def _install_hooks(repo: Path, *names: str) -> None:
    """Hooks that would block for 1000 s, active (the fixture's core.hooksPath removed)."""
    git.Repo(repo).git("config", "--unset", "core.hooksPath")
    for name in names:
        hook = repo / ".git" / "hooks" / name
        hook.write_text("#!/bin/sh\nexec sleep 1000\n", encoding="utf-8")
        hook.chmod(0o755)


def _in_thread(work: Callable[[], T], seconds: float = 60.0) -> Callable[[], T]:
    """Run `work` in a thread; the returned call gives its result, failing if it is still
    running after `seconds` (a hang must fail the test, not block the suite)."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(work()), daemon=True)
    thread.start()

    def result() -> T:
        thread.join(seconds)
        assert not thread.is_alive(), f"still running after {seconds:g}s"
        return box[0]

    return result


def test_a_lock_left_by_a_killed_ce_before_the_ref_moved_is_dropped(repo: Path) -> None:
    """kill -9 while checking the checkout: the next advance goes on (resume has a way)."""
    user = git.Repo(repo)
    req = _branch(repo)
    killed_under_index_lock(repo, user.rev_parse("main"), req.head)
    result = _lane(repo).merge(req)
    assert result.outcome is MergeOutcome.MERGED
    assert user.rev_parse("HEAD") == result.tip
    _consistent(repo)
    assert not (repo / ".git" / "index.lock").exists()


def test_a_fast_forward_half_done_by_a_killed_ce_is_finished_on_resume(repo: Path) -> None:
    """kill -9 after the ref moved and some files were written: resume finds the merge on main
    (and does not advance again); the checkout is brought to it, not left half-changed."""
    user = git.Repo(repo)
    req = _branch(repo)
    old = user.rev_parse("main")
    merge = user.commit_tree(
        user.rev_parse(f"{req.head}^{{tree}}"), [old, req.head], "Merge PRP-1.1: work"
    )
    killed_under_index_lock(repo, old, merge)
    user.update_ref("refs/heads/main", merge, old)
    (repo / "work.py").write_text("x = 1\n", encoding="utf-8")  # written before the kill
    lane = _lane(repo)
    lane.resuming = True
    assert lane.merge(req).outcome is MergeOutcome.MERGED
    assert user.rev_parse("HEAD") == merge
    _consistent(repo)
    assert not (repo / ".git" / "index.lock").exists()


def test_a_lock_of_a_live_git_is_never_taken_over(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(advance, "_LOCK_WAIT_SECONDS", 0.2)
    user = git.Repo(repo)
    req = _branch(repo)
    holder = hold_index_lock(repo, user.rev_parse("main"), req.head)  # a live ce holds it
    try:
        assert _lane(repo).merge(req).outcome is MergeOutcome.BLOCKED
        assert (repo / ".git" / "index.lock").exists()
    finally:
        kill_holder(holder)


def test_a_lock_no_record_names_is_never_taken_over(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead ce's record beside an `index.lock` that is another file (a git command took the
    lock since): the record names another inode, so the lock is not ce's; the record goes."""
    monkeypatch.setattr(advance, "_LOCK_WAIT_SECONDS", 0.2)
    user = git.Repo(repo)
    req = _branch(repo)
    killed_under_index_lock(repo, user.rev_parse("main"), req.head)
    lock = repo / ".git" / "index.lock"
    lock.unlink()
    lock.write_bytes(b"")  # git's own
    assert _lane(repo).merge(req).outcome is MergeOutcome.BLOCKED
    assert lock.exists()
    assert not list((repo / ".git").glob("ce-advance-*"))
