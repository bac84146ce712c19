"""Moving the target branch, and the checkout that holds it, so that the checkout is either fully
fast-forwarded or untouched whatever its user does meanwhile (docs/merge-safety.md).

The ref moves by compare-and-swap. A checkout on the target is brought along with `read-tree -m
-u old new` while `ce` holds its `index.lock` (no git command can switch, commit or stage there
meanwhile), and only once it is proven to be on the target with exactly the old tree staged;
HEAD is checked again before the new index replaces the old one. A checkout that reached the
target just as it moved (the reverse race) is brought along the same way, or the ref goes back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ce import git

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


class _IndexLock:
    """The checkout's `index.lock`, taken the way git takes it; `commit` installs the index
    written into it, anything else leaves the old index in place.

    While ce holds it, `ce-advance` beside it says who and what (pid, ref, old, new): a lock
    left by a `ce` that was killed is recognised, and either dropped (the checkout was not
    touched yet) or its fast-forward finished (only files of `old` or `new` in the way).
    """

    def __init__(self, repo: git.Repo, move: dict[str, str]) -> None:
        self.repo = repo
        self.index = repo.git_path("index")
        self.path = self.index.with_name(self.index.name + ".lock")
        self.owner = self.index.with_name(OWNER_FILE)
        self.move = move  # ref, old, new
        self.done = False

    def take(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                break
            except FileExistsError:
                if self.recovered():
                    continue
                if time.monotonic() >= deadline:
                    raise _Busy from None
                time.sleep(_LOCK_POLL_SECONDS)
        self.owner.write_text(json.dumps({"pid": os.getpid(), **self.move}), encoding="utf-8")
        if self.index.exists():
            shutil.copyfile(self.index, self.path)

    def commit(self) -> None:
        self.owner.unlink(missing_ok=True)  # first: an owner file always means our lock
        self.path.replace(self.index)
        self.done = True

    def release(self) -> None:
        if not self.done:  # never another process's lock: ours is only gone once committed
            self.owner.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            self.done = True

    def recovered(self) -> bool:
        """Whether the lock in the way was a dead `ce`'s, and is gone now."""
        dead = _dead_owner(self.owner)
        if dead is None:
            return False
        ref, old, new = dead["ref"], dead["old"], dead["new"]
        moved = self.repo.try_rev_parse(ref) == new
        if moved and not _finish(self.repo, old, new, self.path):
            return False
        self.path.with_name(self.path.name + ".lock").unlink(missing_ok=True)  # read-tree's
        self.owner.unlink(missing_ok=True)  # first: an owner file always means our lock
        if moved:
            self.path.replace(self.index)
        else:  # killed before the ref moved: the checkout was not touched
            self.path.unlink(missing_ok=True)
        return True


OWNER_FILE = "ce-advance"


def _dead_owner(owner: Path) -> dict[str, str] | None:
    try:
        record = json.loads(owner.read_text(encoding="utf-8"))
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return {key: str(record[key]) for key in ("ref", "old", "new")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None  # alive: a `ce` at work


def _finish(checkout: git.Repo, old: str, new: str, lock: Path) -> bool:
    """Finish, into `lock`, a killed fast-forward from `old` to `new` (the ref is at `new`, the
    index still `old`): only when each file it changes holds `old`'s or `new`'s content, so
    that nothing but ce's own half-done work is overwritten."""
    for path in checkout.changed_between(old, new):
        if checkout.hash_file(path) not in {checkout.blob(old, path), checkout.blob(new, path)}:
            return False
    shutil.copyfile(lock.with_name(lock.name.removesuffix(".lock")), lock)
    return checkout.two_tree_checkout(old, new, lock, reset=True).returncode == 0


@contextlib.contextmanager
def _locked(repo: git.Repo, ref: str, old: str, new: str) -> Iterator[_IndexLock]:
    lock = _IndexLock(repo, {"ref": ref, "old": old, "new": new})
    lock.take(_LOCK_WAIT_SECONDS)
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
        lock = _IndexLock(git.Repo(path), {})
        if lock.path.exists():
            lock.recovered()


def advance(repo: git.Repo, ref: str, old: str, new: str) -> Advance:
    """Move `ref` from `old` to `new`, and the checkout holding it (if any) with it."""
    path = holder(repo, ref)
    if path is not None:
        return _with_checkout(git.Repo(path), ref, old, new)
    moved = _swap(repo, ref, new, old)
    if moved.moved:
        return _catch_up(repo, ref, old, new)
    return moved


def _swap(repo: git.Repo, ref: str, new: str, old: str) -> Advance:
    try:
        return _MOVED if repo.update_ref(ref, new, old, message="ce: merge") else _RACE
    except git.GitError as exc:
        lock = repo.common_dir() / f"{ref}.lock"
        return Advance(
            moved=False,
            reason=f"git could not move {ref}: {said(exc.stderr)}. If no git command is "
            f"running in the repository, a stale lock is left: remove {lock}.",
        )


def _with_checkout(checkout: git.Repo, ref: str, old: str, new: str) -> Advance:
    try:
        with _locked(checkout, ref, old, new) as lock:
            unsafe = _unsafe(checkout, ref, old)
            if unsafe is not None:
                return unsafe
            swapped = _swap(checkout, ref, new, old)
            if not swapped.moved:
                return swapped
            return _bring_along(checkout, ref, old, new, lock)
    except _Busy:
        return _busy(checkout)


def _unsafe(checkout: git.Repo, ref: str, old: str) -> Advance | None:
    """Why the checkout may not be moved from `old` (None: it provably can): not on the target
    any more or the target moved (a race), a bare repository, something staged."""
    where = checkout.path
    if checkout.is_bare():
        return Advance(
            moved=False,
            reason=f"git takes {where} for a bare repository (core.bare = true), which has "
            f"no files to bring up to date. If that is not meant, run "
            f"`git -C {where} config core.bare false`.",
        )
    if checkout.current_branch() != ref.removeprefix("refs/heads/"):
        return _RACE
    if checkout.rev_parse(ref) != old:
        return _RACE
    if not checkout.index_matches(old):
        return Advance(
            moved=False,
            reason=f"the checkout at {where} has staged changes (or a git command there "
            "is halfway through a switch). Commit them, or unstage them with "
            "`git restore --staged .`.",
        )
    return None


def _bring_along(checkout: git.Repo, ref: str, old: str, new: str, lock: _IndexLock) -> Advance:
    """With `ref` already at `new`: the files and index from `old` to `new`; on any refusal the
    ref goes back to `old` and the checkout stays as it was."""
    done = checkout.two_tree_checkout(old, new, lock.path)
    if done.returncode == 0 and checkout.current_branch() == ref.removeprefix("refs/heads/"):
        lock.commit()
        return _MOVED
    if done.returncode == 0:  # HEAD was moved by plumbing meanwhile: put the files back
        checkout.two_tree_checkout(new, old, lock.path)
    checkout.update_ref(ref, old, new, message="ce: merge undone, the checkout refused it")
    if done.returncode == 0:
        return _RACE
    return Advance(
        moved=False,
        reason=f"the checkout at {checkout.path} refused the fast-forward, and nothing was "
        f"changed: git said: {said(done.stderr)}. Commit or move those files away.",
    )


def _catch_up(repo: git.Repo, ref: str, old: str, new: str) -> Advance:
    """The reverse race: no checkout held the target when it moved, but one may have switched
    to it just then (HEAD = `new`, files and index = `old`): bring it along, or move back."""
    path = holder(repo, ref)
    if path is None:
        return _MOVED
    checkout = git.Repo(path)
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
