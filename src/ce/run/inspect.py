"""`ce status` and `ce cleanup`: what batches left behind, read from checkpoints and git."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ce import git
from ce.core.errors import CeError
from ce.core.events import PrpState
from ce.core.names import (
    attempt_branches,
    conflict_branches,
    integration_worktree_name,
    kept_attempt,
    phases_done,
)
from ce.run.checkpoint import Checkpoint, SavedPrp
from ce.run.lock import LOCK_NAME
from ce.run.state import StateDir

HEADS = "refs/heads/"
UNFINISHED = ("IN_PROGRESS", "PAUSED", "INTERRUPTED")
# A PRP some process works on. In a batch no process runs (killed, or stopped before its
# checkpoint caught up) none is: such a PRP is shown as INTERRUPTED, and --resume takes it up.
_ACTIVE = frozenset(
    s.value for s in (PrpState.PREPARING, PrpState.RUNNING, PrpState.VALIDATING, PrpState.MERGING)
)
INTERRUPTED = "interrupted"


@dataclass(frozen=True, kw_only=True)
class PrpStatus:
    id: str
    state: str
    phases_done: int
    phases_total: int
    branch: str
    branch_exists: bool
    worktree: str
    worktree_exists: bool
    last_commit_age: float | None
    merged_as: str | None
    error: str | None


@dataclass(frozen=True, kw_only=True)
class Holder:
    """The process holding the repository's batch lock right now."""

    batch_id: str
    pid: int
    since: float


@dataclass(frozen=True, kw_only=True)
class BatchStatusView:
    batch_id: str
    status: str
    target: str
    checkpoint: Path
    updated_at: float | None
    pause_reason: str | None
    prps: tuple[PrpStatus, ...]
    running: Holder | None = None  # set when this batch's orchestrator is alive
    problem: str | None = None  # why the checkpoint could not be read

    @property
    def stopped(self) -> bool:
        """Unfinished, and no process is working on it: it waits for --resume."""
        return self.status in UNFINISHED and self.running is None

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "running": None if self.running is None else asdict(self.running),
            "target": self.target,
            "checkpoint": str(self.checkpoint),
            "updated_at": self.updated_at,
            "pause_reason": self.pause_reason,
            "prps": [asdict(p) for p in self.prps],
            "problem": self.problem,
        }


def checkpoints(state: StateDir, batch_id: str | None) -> list[Path]:
    if batch_id is not None:
        path = state.checkpoint(batch_id)
        if not path.exists():
            raise CeError(f"No checkpoint for batch {batch_id} ({path}): it has not been run here.")
        return [path]
    return sorted(state.root.glob("batch-execution-*.json"))


def batch_status(repo: git.Repo, path: Path, now: float | None = None) -> BatchStatusView:
    """Where a batch stands: its checkpoint, corrected by git (branches, commits, worktrees)."""
    try:
        saved = Checkpoint.read(path)
    except CeError as exc:  # one damaged checkpoint must not hide the other batches
        return BatchStatusView(
            batch_id=path.stem.removeprefix("batch-execution-"),
            status="UNREADABLE",
            target="",
            checkpoint=path,
            updated_at=None,
            pause_reason=None,
            prps=(),
            problem=str(exc),
        )
    results = list(saved.results().values())
    dates = repo.ref_dates([HEADS + r.branch for r in results])
    now = time.time() if now is None else now
    holder = lock_holder(repo.common_dir())
    running = holder if holder and holder.batch_id == saved.batch_id else None
    status, target = saved.status.value, saved.target
    stopped = status in UNFINISHED and running is None
    return BatchStatusView(
        batch_id=saved.batch_id,
        status=status,
        target=target,
        checkpoint=path,
        updated_at=saved.times.updated_at,
        pause_reason=saved.pause_reason,
        prps=tuple(
            _prp_status(repo, r, dates, now, target=target, stopped=stopped) for r in results
        ),
        running=running,
    )


def _prp_status(
    repo: git.Repo,
    result: SavedPrp,
    dates: dict[str, float],
    now: float,
    *,
    target: str,
    stopped: bool,
) -> PrpStatus:
    ref = HEADS + result.branch
    exists = ref in dates
    state = result.state.value
    return PrpStatus(
        id=result.prp_id,
        state=INTERRUPTED if stopped and state in _ACTIVE else state,
        phases_done=_phases_done(repo, result, ref if exists else None, target),
        phases_total=result.phases_total,
        branch=result.branch,
        branch_exists=exists,
        worktree=result.worktree,
        worktree_exists=Path(result.worktree).exists(),
        last_commit_age=now - dates[ref] if exists else None,
        merged_as=result.merged_as,
        error=result.error,
    )


def _phases_done(repo: git.Repo, result: SavedPrp, ref: str | None, target: str) -> int:
    """The checkpoint's count, or git's when the branch is there: the checkpoint learns a
    PRP's phases when its agent ends, git as each one is committed (and a run killed before
    its checkpoint caught up has more phase commits than the checkpoint says). Before the
    checkpoint records the PRP's base, its branch is counted from the target."""
    recorded = len(result.phases_completed)
    base = result.base or (HEADS + target if target else None)
    if ref is None or base is None:
        return recorded
    try:
        commits = repo.commits(base, ref)
    except git.GitError:
        return recorded
    found = phases_done((c.subject for c in commits), result.prp_id)
    return max(recorded, len(found))


def lock_holder(common_dir: Path) -> Holder | None:
    """Who holds the batch lock now (probed without waiting), or None when nobody does."""
    path = common_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> Holder:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(batch_id=str(data["batch_id"]), pid=int(data["pid"]), since=data["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(batch_id="?", pid=0, since=0.0)


# -- cleanup ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """Where a batch may have left something for one PRP."""

    id: str
    branch: str
    worktree: str


@dataclass(frozen=True, kw_only=True)
class CleanupReport:
    batch_id: str
    removed_worktrees: tuple[str, ...]
    deleted_branches: tuple[str, ...]
    removed_files: tuple[str, ...]
    refused: tuple[str, ...]  # what was kept, each with why and what to do

    @property
    def empty(self) -> bool:
        return not (
            self.removed_worktrees or self.deleted_branches or self.removed_files or self.refused
        )


def checkpoint_leftovers(path: Path) -> tuple[str, list[Leftover]]:
    """The target and the PRPs a checkpoint names; an unreadable checkpoint names none."""
    try:
        saved = Checkpoint.read(path)
    except CeError:
        return "", []
    prps = [
        Leftover(id=r.prp_id, branch=r.branch, worktree=r.worktree)
        for r in saved.results().values()
    ]
    return saved.target, prps


def cleanup_batch(
    repo: git.Repo,
    state: StateDir,
    batch_id: str,
    *,
    target: str,
    prps: Sequence[Leftover],
    force: bool,
) -> CleanupReport:
    """Remove the PRPs' worktrees and branches, then the batch's state files.

    Unmerged commits (not on `target`) and uncommitted changes in a worktree are kept unless
    `force`; while anything is kept, so is the state that lets --resume continue.
    """
    removed: list[str] = []
    branches: list[str] = []
    refused: list[str] = []
    tips = repo.ref_tips(
        [pattern(p.branch) for p in prps for pattern in (conflict_branches, attempt_branches)]
    )
    registered = {w.path.resolve() for w in repo.worktrees()}
    for prp in prps:
        names = [prp.branch, *(r.removeprefix(HEADS) for r in sorted(tips) if _kept_by(r, prp))]
        names = [n for n in names if repo.branch_exists(n)]
        why = _foreign(prp, registered) or (None if force else _unsafe(repo, prp, names, target))
        if why is not None:
            refused.append(f"{prp.id}: {why}")
            continue
        if Path(prp.worktree).exists():
            repo.remove_worktree(Path(prp.worktree), force=True)
            removed.append(prp.worktree)
        branches += names
    repo.delete_branches(branches)
    removed += _remove_integration_worktree(repo)
    repo.prune_worktrees()
    files = [] if refused else _remove_state(state, batch_id, [p.id for p in prps])
    return CleanupReport(
        batch_id=batch_id,
        removed_worktrees=tuple(removed),
        deleted_branches=tuple(branches),
        removed_files=tuple(files),
        refused=tuple(refused),
    )


def _kept_by(ref: str, prp: Leftover) -> bool:
    """A `<branch>-conflict-N` or `<branch>-attempt-N` branch: an earlier attempt the rerun
    policy or a retry kept."""
    return kept_attempt(prp.branch, ref.removeprefix(HEADS))


def _foreign(prp: Leftover, registered: set[Path]) -> str | None:
    """A directory where the PRP's worktree would be that is not a worktree: not ce's to
    delete, even with --force."""
    path = Path(prp.worktree)
    if path.exists() and path.resolve() not in registered:
        return f"{path} is not a worktree of this repository; move or remove it yourself"
    return None


def _unsafe(repo: git.Repo, prp: Leftover, branches: list[str], target: str) -> str | None:
    """Why deleting this PRP's leftovers would lose work, or None when it would not."""
    for branch in branches:
        if not target or not repo.is_ancestor(HEADS + branch, HEADS + target):
            what = f"worktree {prp.worktree}" if branch == prp.branch else "an earlier attempt"
            return (
                f"branch {branch} has commits not on {target or 'the target'} ({what}); "
                "use --force to delete it"
            )
    worktree = Path(prp.worktree)
    if (worktree / ".git").exists() and git.Repo(worktree).has_changes():
        return f"worktree {prp.worktree} has uncommitted changes; use --force to delete it"
    return None


def _remove_integration_worktree(repo: git.Repo) -> list[str]:
    """The merge lane's detached worktree, left behind when a run was killed."""
    name = integration_worktree_name(repo.toplevel().name)
    lanes = re.compile(re.escape(name) + r"(-[0-9]+)?")  # one per merged tree checked at once
    found = [w.path for w in repo.worktrees() if w.detached and lanes.fullmatch(w.path.name)]
    for path in found:
        repo.remove_worktree(path, force=True)
    return [str(p) for p in found]


def _remove_state(state: StateDir, batch_id: str, prp_ids: list[str]) -> list[str]:
    removed = []
    for path in (state.checkpoint(batch_id), state.journal(batch_id)):
        if path.exists():
            path.unlink()
            removed.append(str(path))
    for prp_id in prp_ids:
        scratch = state.scratch(prp_id)
        if scratch.exists():
            shutil.rmtree(scratch)
            removed.append(str(scratch))
    with contextlib.suppress(OSError):  # empty now: the scratch directory goes too
        (state.root / "run").rmdir()
    return removed
