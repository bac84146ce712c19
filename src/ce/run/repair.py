"""What a power cut leaves in ce's own worktrees, repaired before a run goes on (I8).

A git command killed midway leaves its lock file (`index.lock`, a branch's `.lock`), a
`worktree add` leaves its worktree "locked: initializing" (missing, or with no files checked
out; or, once ce checks out after the add, without an index), a `worktree remove` leaves a
directory without its `.git`. In ce's own worktrees (a PRP's,
the integration worktree) nobody else works, so once no live process is in them these are
removed; a half-made worktree is removed whole, to be made again (no executor ever ran in it).
The user's checkout is never touched: a lock left there is reported, with what to do.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.core.events import Listener, Notice, NoticeLevel
from ce.proc import procfs
from ce.run import index_lock

_WORKTREE_LOCKS = ("index.lock", "HEAD.lock")
_HALF_MADE = "initializing"  # the reason `git worktree add` locks a worktree while making it


@dataclass(frozen=True, kw_only=True)
class OwnWorktree:
    """A worktree ce made, where it may be: a PRP's (with its branch), or the integration one."""

    path: Path
    branch: str | None
    prp: str | None = None


def repair_worktrees(repo: git.Repo, worktrees: Iterable[OwnWorktree], emit: Listener) -> None:
    admin = _admin_dirs(repo)
    pruned = False
    for worktree in worktrees:
        entry = admin.get(worktree.path.absolute() / ".git")
        if entry is not None and _repair_registered(repo, worktree, entry, emit):
            pruned = True
        if worktree.branch is not None:
            ref_lock = repo.common_dir() / "refs" / "heads" / f"{worktree.branch}.lock"
            _remove_stale(ref_lock, worktree, emit)
    if pruned:
        repo.prune_worktrees()


def report_user_locks(repo: git.Repo, root: Path, target: str, emit: Listener) -> None:
    """Locks a killed git command left in the user's checkout: theirs to remove, never ce's."""
    git_dir = repo.common_dir()
    candidates = [
        git_dir / "index.lock",
        git_dir / "HEAD.lock",
        git_dir / "refs" / "heads" / f"{target}.lock",
    ]
    for lock in candidates:
        if index_lock.owns(lock):
            continue  # a lock ce's own advance took: the lane recovers it (`advance.recover`)
        if lock.exists() and not _git_working_in(root, lock, exclude=_own_worktree_dirs(repo)):
            message = (
                f"{lock} is left from a git command that was killed (no git process runs in "
                f"{root}). The merges into {target} need it gone: if no git command is running "
                f"there, remove it (`rm {lock}`) and run --resume again."
            )
            emit(Notice(level=NoticeLevel.WARNING, message=message))


def _repair_registered(repo: git.Repo, worktree: OwnWorktree, entry: Path, emit: Listener) -> bool:
    """Repair one registered worktree; True when it was removed (the admin dir to prune)."""
    path = worktree.path
    half_made = _lock_reason(entry) == _HALF_MADE or not (entry / "index").exists()
    if half_made or (path.exists() and not (path / ".git").exists()):
        if _busy(path):
            return False
        what = "half-made" if half_made else "half-removed"
        _say(emit, worktree, f"removing the {what} worktree {path} (made again if needed)")
        shutil.rmtree(path, ignore_errors=True)
        with repo.worktree_lock():
            repo.git("worktree", "unlock", "--", str(path.absolute()), check=False)
        return True
    if not path.exists():
        return True  # removed but still registered: pruned
    for name in _WORKTREE_LOCKS:
        _remove_stale(entry / name, worktree, emit)
    return False


def _remove_stale(lock: Path, worktree: OwnWorktree, emit: Listener) -> None:
    if lock.exists() and not _busy(worktree.path, lock):
        _say(emit, worktree, f"removed stale {lock} (left by a git command that was killed)")
        lock.unlink(missing_ok=True)


def _say(emit: Listener, worktree: OwnWorktree, message: str) -> None:
    emit(Notice(level=NoticeLevel.WARNING, prp=worktree.prp, message=message))


def _admin_dirs(repo: git.Repo) -> dict[Path, Path]:
    """`<worktree>/.git` → its administrative directory (`.git/worktrees/<name>`), read from
    the files themselves: `git worktree list` fails on a half-written one."""
    found: dict[Path, Path] = {}
    root = repo.common_dir() / "worktrees"
    for entry in root.iterdir() if root.is_dir() else ():
        try:
            found[Path((entry / "gitdir").read_text(encoding="utf-8").strip())] = entry
        except OSError:
            continue
    return found


def _lock_reason(entry: Path) -> str | None:
    try:
        return (entry / "locked").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _own_worktree_dirs(repo: git.Repo) -> tuple[Path, ...]:
    return tuple(Path(p).parent for p in _admin_dirs(repo))


def _busy(directory: Path, lock: Path | None = None) -> bool:
    """Whether a live process works in `directory` (ce's own: nobody else should) or holds
    `lock` open."""
    return any(
        _in(seen.cwd, directory) or (lock is not None and procfs.holds_open(seen.pid, lock))
        for seen in procfs.processes()
    )


def _git_working_in(root: Path, lock: Path, *, exclude: tuple[Path, ...]) -> bool:
    """Whether a live git process runs in the user's checkout (not in one of its worktrees)
    or holds `lock` open: the user's shell and editor may sit there, so only git counts."""
    for seen in procfs.processes():
        if procfs.holds_open(seen.pid, lock):
            return True
        if (
            seen.name == "git"
            and _in(seen.cwd, root)
            and not any(_in(seen.cwd, w) for w in exclude)
        ):
            return True
    return False


def _in(cwd: Path, directory: Path) -> bool:
    root = directory.absolute()
    return cwd == root or root in cwd.parents
