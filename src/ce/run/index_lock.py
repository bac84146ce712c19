"""The `index.lock` of the checkout holding the target, taken the way git takes it, and proven
ce's own at every moment a kill can land (docs/merge-safety.md).

ce makes its lock file under its own name first (`ce-advance-<pid>-<n>.lock`, beside the index),
writes the owner record (`….json`: pid, the move, the lock file's inode), and only then links
the file to `index.lock` (atomic, and it fails when the lock is taken). The new index is written
beside (`….index`) and renamed over the index while the lock is held, so `index.lock` keeps the
inode recorded. Giving the lock back goes the other way: `index.lock`, then the record, then
ce's own name. So an `index.lock` whose inode a record names is always ce's, and ce's own name
keeps that inode from being given to another file while the record lives.

A lock whose owner is dead is dropped (the ref had not moved: the checkout was not touched) or
its fast-forward finished (only files of `old` or `new` in the way); what a dead owner left
around a lock it did not hold is removed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.fsio import write_atomic
from ce.run import faults

PREFIX = "ce-advance-"
_COUNT = itertools.count(1)
_HELD: set[str] = set()  # the tokens this process holds: its pid may be a dead one's too


@dataclass(frozen=True)
class Owned:
    """The files of one taking of the lock, named by its token (`<pid>-<n>`)."""

    folder: Path
    token: str

    def file(self, suffix: str) -> Path:
        return self.folder / f"{PREFIX}{self.token}{suffix}"

    @property
    def record(self) -> Path:
        return self.file(".json")

    @property
    def pin(self) -> Path:
        return self.file(".lock")

    @property
    def staged(self) -> Path:
        """The index being written, renamed over the index on commit."""
        return self.file(".index")

    def alive(self) -> bool:
        pid = int(self.token.split("-", 1)[0])
        if pid == os.getpid():
            return self.token in _HELD
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # it exists, another user's
        return True

    def read(self) -> dict[str, str] | None:
        """The record (ref, old, new, inode), or None when unreadable or half-written."""
        try:
            data = json.loads(self.record.read_text(encoding="utf-8"))
            return {key: str(data[key]) for key in ("ref", "old", "new", "inode")}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def forget(self) -> None:
        """The record first: it must never outlive the name that keeps its inode."""
        self.record.unlink(missing_ok=True)
        for pattern in (f"{PREFIX}{self.token}.*", f".{PREFIX}{self.token}.*"):
            for path in self.folder.glob(pattern):  # the pin, the staged index, temporaries
                path.unlink(missing_ok=True)


class IndexLock:
    """The lock, taken by `take`; `commit` installs the index written into `staged`, anything
    else leaves the old index in place."""

    def __init__(self, repo: git.Repo, move: dict[str, str]) -> None:
        self.repo = repo
        self.index = repo.git_path("index")
        self.path = self.index.with_name(self.index.name + ".lock")
        self.move = move  # ref, old, new
        self.own = Owned(self.index.parent, f"{os.getpid()}-{next(_COUNT)}")
        self.staged = self.own.staged
        self.done = False

    def take(self) -> bool:
        """One try: True when taken, False when another process holds it."""
        _HELD.add(self.own.token)
        try:
            os.close(os.open(self.own.pin, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            faults.kill_point("advance:pinned")
            inode = self.own.pin.stat().st_ino
            record = {"pid": os.getpid(), **self.move, "inode": inode}
            # Not fsynced (ce.run.state.Journal's rule): a kill cannot lose it, and the
            # fsynced `advance` intent already stands before the target moves.
            write_atomic(self.own.record, json.dumps(record), durable=False)
            faults.kill_point("advance:recorded")
            os.link(self.own.pin, self.path)
        except FileExistsError:
            self._forget()
            return False
        except BaseException:
            self._forget()
            raise
        faults.kill_point("advance:locked")
        if self.index.exists():
            shutil.copyfile(self.index, self.staged)
        return True

    def commit(self) -> None:
        self.staged.replace(self.index)
        faults.kill_point("advance:installed")
        self.release()

    def release(self) -> None:
        if not self.done:  # never another process's lock: only ever the inode ce recorded
            _unlink_if(self.path, self.own.pin)
            faults.kill_point("advance:unlocked")
            self._forget()
            self.done = True

    def _forget(self) -> None:
        self.own.forget()
        _HELD.discard(self.own.token)


def recover(repo: git.Repo) -> bool:
    """What dead `ce`s left in this checkout: their other files removed, and an `index.lock`
    of theirs dropped or its fast-forward finished. Whether such a lock is gone now (not when
    its fast-forward cannot be finished: files not its own are in the way)."""
    index = repo.git_path("index")
    lock = index.with_name(index.name + ".lock")
    holder = holding(lock)
    for own in _owned(index.parent):
        if own != holder and not own.alive():
            own.forget()
    return holder is not None and not holder.alive() and _finish_or_drop(repo, holder, lock)


def owns(lock: Path) -> bool:
    """Whether `lock` is an `index.lock` ce's advance took (held, or left by a killed `ce`)."""
    return holding(lock) is not None


def holding(lock: Path) -> Owned | None:
    """The taking whose record names `lock`'s inode."""
    try:
        inode = str(lock.stat().st_ino)
    except OSError:
        return None
    for own in _owned(lock.parent):
        record = own.read()
        if record is not None and record["inode"] == inode and _same(own.pin, lock):
            return own
    return None


def _finish_or_drop(repo: git.Repo, own: Owned, lock: Path) -> bool:
    record = own.read()
    if record is None:
        return False
    index = lock.with_name(lock.name.removesuffix(".lock"))
    on_ref = repo.current_branch() == record["ref"].removeprefix("refs/heads/")
    if on_ref and repo.try_rev_parse(record["ref"]) == record["new"]:
        if not _finish(repo, record["old"], record["new"], index, own.staged):
            return False
        own.staged.replace(index)
    # else: killed before the ref moved (or before HEAD was checked): the checkout was not
    # touched
    _unlink_if(lock, own.pin)
    own.forget()
    return True


def _finish(checkout: git.Repo, old: str, new: str, index: Path, staged: Path) -> bool:
    """Finish, into `staged`, a killed fast-forward from `old` to `new` (the ref is at `new`,
    the index `old` or already `new`): only when each file it changes holds `old`'s or `new`'s
    content, so that nothing but ce's own half-done work is overwritten."""
    for path in checkout.changed_between(old, new):
        if checkout.hash_file(path) not in {checkout.blob(old, path), checkout.blob(new, path)}:
            return False
    staged.with_name(staged.name + ".lock").unlink(missing_ok=True)  # a killed read-tree's
    shutil.copyfile(index, staged)
    return checkout.two_tree_checkout(old, new, staged, reset=True).returncode == 0


def _owned(folder: Path) -> list[Owned]:
    tokens = set()
    for path in folder.glob(f"*{PREFIX}*"):
        token = path.name.lstrip(".").removeprefix(PREFIX).split(".", 1)[0]
        if token.split("-")[0].isdigit() and "-" in token:
            tokens.add(token)
    return [Owned(folder, token) for token in sorted(tokens)]


def _same(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return a.samefile(b)
    return False


def _unlink_if(lock: Path, pin: Path) -> None:
    """Remove `lock` only while it is still the file `pin` names."""
    if _same(lock, pin):
        lock.unlink(missing_ok=True)
