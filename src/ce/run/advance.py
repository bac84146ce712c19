"""Moving the target branch, and the checkout that holds it, so that the checkout is either fully
fast-forwarded or untouched whatever its user does meanwhile (docs/merge-safety.md).

The ref moves by compare-and-swap. A checkout on the target is brought along with `read-tree -m
-u old new` while `ce` holds its `index.lock` (no git command can switch, commit or stage there
meanwhile), and only once it is proven to be on the target with exactly the old tree staged;
HEAD is checked again before the new index replaces the old one. A checkout that reached the
target just as it moved (the reverse race) is brought along the same way, or the ref goes back.
The lock, and what a killed `ce` left of it, are `ce.run.index_lock`'s.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.run import faults, index_lock
from ce.run.index_lock import IndexLock

_LOCK_WAIT_SECONDS = 10.0  # a git command running in the checkout: wait for it, then give up
_LOCK_POLL_SECONDS = 0.05
_SAID_MAX = 400


@dataclass(frozen=True, kw_only=True)
class Advance:
    """True: moved. None: lost a race (recompute). False: blocked, `reason` says why and what
    to do."""

    moved: bool | None
    reason: str = ""


_RACE = Advance(moved=None)
_MOVED = Advance(moved=True)


class _Busy(Exception):
    """Another git process holds the checkout's index lock."""


@contextlib.contextmanager
def _locked(repo: git.Repo, ref: str, old: str, new: str) -> Iterator[IndexLock]:
    """The checkout's index lock; a running git command holding it is waited for, a dead
    `ce`'s is recovered."""
    lock = IndexLock(repo, {"ref": ref, "old": old, "new": new})
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while not lock.take():
        if index_lock.recover(repo):
            continue
        if time.monotonic() >= deadline:
            raise _Busy
        time.sleep(_LOCK_POLL_SECONDS)
    try:
        yield lock
    finally:
        lock.release()


def holder(repo: git.Repo, ref: str) -> Path | None:
    """The checkout (the main one or a linked worktree) whose HEAD is on `ref`."""
    if repo.current_branch() == ref.removeprefix("refs/heads/"):
        return repo.path
    for info in repo.worktrees():
        if info.branch == ref:
            return Path(info.path)
    return None


def recover(repo: git.Repo, ref: str) -> None:
    """What a `ce` killed while advancing left in the checkout holding `ref`: its index lock
    dropped, or its fast-forward finished (resume may find the merge done and not advance)."""
    path = holder(repo, ref)
    if path is not None:
        index_lock.recover(git.Repo(path))


def advance(repo: git.Repo, ref: str, old: str, new: str, release: Sequence[str] = ()) -> Advance:
    """Move `ref` from `old` to `new`, and the checkout holding it (if any) with it; the refs
    `release` are deleted in the same transaction as the move."""
    path = holder(repo, ref)
    if path is not None:
        return _with_checkout(repo.checkout_at(path), ref, old, new, release)
    moved = _swap(repo, ref, new, old, release)
    if moved.moved:
        return _catch_up(repo, ref, old, new)
    return moved


def _swap(repo: git.Repo, ref: str, new: str, old: str, release: Sequence[str] = ()) -> Advance:
    try:
        moved = repo.update_ref(ref, new, old, message="ce: merge", delete=release)
        return _MOVED if moved else _RACE
    except git.GitError as exc:
        lock = repo.common_dir() / f"{ref}.lock"
        return Advance(
            moved=False,
            reason=f"git could not move {ref}: {said(exc.stderr)}. If no git command is "
            f"running in the repository, a stale lock is left: remove {lock}.",
        )


def _with_checkout(
    checkout: git.Repo, ref: str, old: str, new: str, release: Sequence[str]
) -> Advance:
    try:
        with _locked(checkout, ref, old, new) as lock:
            unsafe = _unsafe(checkout, ref, old)
            if unsafe is not None:
                return unsafe
            swapped = _swap(checkout, ref, new, old, release)
            if not swapped.moved:
                return swapped
            faults.kill_point("advance:swapped")
            return _bring_along(checkout, ref, old, new, lock)
    except _Busy:
        return _busy(checkout)


def _unsafe(checkout: git.Repo, ref: str, old: str) -> Advance | None:
    """Why the checkout may not be moved from `old` (None: it provably can): not on the target
    any more or the target moved (a race), a bare repository, something staged."""
    where = checkout.path
    bare, tip = checkout.bare_and_tip(ref)
    if bare:
        return Advance(
            moved=False,
            reason=f"git takes {where} for a bare repository (core.bare = true), which has "
            f"no files to bring up to date. If that is not meant, run "
            f"`git -C {where} config core.bare false`.",
        )
    if checkout.current_branch() != ref.removeprefix("refs/heads/"):
        return _RACE
    if tip != old:
        return _RACE
    if not checkout.index_matches(old):
        return Advance(
            moved=False,
            reason=f"the checkout at {where} has staged changes (or a git command there "
            "is halfway through a switch). Commit them, or unstage them with "
            "`git restore --staged .`.",
        )
    return None


def _bring_along(checkout: git.Repo, ref: str, old: str, new: str, lock: IndexLock) -> Advance:
    """With `ref` already at `new`: the files and index from `old` to `new`; on any refusal the
    ref goes back to `old` and the checkout stays as it was."""
    done = checkout.two_tree_checkout(old, new, lock.staged)
    faults.kill_point("advance:checked-out")
    if done.returncode == 0 and checkout.current_branch() == ref.removeprefix("refs/heads/"):
        lock.commit()
        return _MOVED
    if done.returncode == 0:  # HEAD was moved by plumbing meanwhile: put the files back
        checkout.two_tree_checkout(new, old, lock.staged)
    checkout.update_ref(ref, old, new, message="ce: merge undone, the checkout refused it")
    if done.returncode == 0:
        return _RACE
    return Advance(moved=False, reason=_refused(checkout.path, done.stderr))


def _refused(where: Path, stderr: str) -> str:
    """The refused fast-forward, naming the files in its way (git names them in quotes, or
    one per indented line)."""
    quoted = re.findall(r"'([^'\n]+)'", stderr)
    listed = [line.strip() for line in stderr.splitlines() if line.startswith(("\t", "    "))]
    files = list(dict.fromkeys([*quoted, *listed]))
    one = len(files) == 1
    blocking = (
        f"{', '.join(files)} {'is' if one else 'are'} in the way: move {'it' if one else 'them'} "
        f"away, or commit {'it' if one else 'them'}"
        if files
        else "move away or commit the files git names"
    )
    return (
        f"the checkout at {where} refused the fast-forward, and nothing was changed: "
        f"{blocking} (git said: {said(stderr).rstrip('.')})."
    )


def _catch_up(repo: git.Repo, ref: str, old: str, new: str) -> Advance:
    """The reverse race: no checkout held the target when it moved, but one may have switched
    to it just then (HEAD = `new`, files and index = `old`): bring it along, or move back."""
    path = holder(repo, ref)
    if path is None:
        return _MOVED
    checkout = repo.checkout_at(path)
    try:
        with _locked(checkout, ref, old, new) as lock:
            if checkout.current_branch() != ref.removeprefix("refs/heads/"):
                return _MOVED
            if checkout.is_bare() or not checkout.index_matches(old):
                return _MOVED  # it checked out `new` itself (or is not ours to judge)
            return _bring_along(checkout, ref, old, new, lock)
    except _Busy:
        return _MOVED  # the git command holding it reads the ref as it is now


def _busy(checkout: git.Repo) -> Advance:
    lock = checkout.git_path("index.lock")
    return Advance(
        moved=False,
        reason=f"another git process is working in the checkout at {checkout.path} "
        f"({lock} exists). If none is running, the lock is stale: remove it.",
    )


def said(stderr: str) -> str:
    """Git's message, on one line and not too long."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = "; ".join(lines) or "(nothing)"
    return text if len(text) <= _SAID_MAX else text[: _SAID_MAX - 3] + "..."
