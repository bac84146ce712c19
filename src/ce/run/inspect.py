"""`ce status` and `ce cleanup`: what batches left behind, read from checkpoints and git."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ce import git
from ce.errors import CeError
from ce.run.state import StateDir, read_checkpoint


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
class BatchStatusView:
    batch_id: str
    status: str
    target: str
    checkpoint: Path
    updated_at: float | None
    pause_reason: str | None
    prps: tuple[PrpStatus, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "target": self.target,
            "checkpoint": str(self.checkpoint),
            "updated_at": self.updated_at,
            "pause_reason": self.pause_reason,
            "prps": [p.__dict__ for p in self.prps],
        }


def checkpoints(state: StateDir, batch_id: str | None) -> list[Path]:
    if batch_id is not None:
        path = state.checkpoint(batch_id)
        if not path.exists():
            raise CeError(f"No checkpoint for batch {batch_id} ({path}): it has not been run here.")
        return [path]
    return sorted(state.root.glob("batch-execution-*.json"))


def _results(data: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for number in sorted(data.get("stages", {}), key=int):
        results += (data["stages"][number].get("results") or {}).values()
    return results


def batch_status(repo: git.Repo, path: Path, now: float | None = None) -> BatchStatusView:
    data = read_checkpoint(path)
    results = _results(data)
    refs = [f"refs/heads/{r['branch']}" for r in results]
    dates = repo.ref_dates(refs) if refs else {}
    now = time.time() if now is None else now
    prps = tuple(
        PrpStatus(
            id=r["prp_id"],
            state=r["state"],
            phases_done=len(r.get("phases_completed", [])),
            phases_total=int(r.get("phases_total", 0)),
            branch=r["branch"],
            branch_exists=f"refs/heads/{r['branch']}" in dates,
            worktree=r["worktree"],
            worktree_exists=Path(r["worktree"]).exists(),
            last_commit_age=(now - dates[f"refs/heads/{r['branch']}"])
            if f"refs/heads/{r['branch']}" in dates
            else None,
            merged_as=r.get("merged_as"),
            error=r.get("error"),
        )
        for r in results
    )
    return BatchStatusView(
        batch_id=str(data["batch_id"]),
        status=str(data["status"]),
        target=str(data.get("target", "")),
        checkpoint=path,
        updated_at=data.get("updated_at"),
        pause_reason=data.get("pause_reason"),
        prps=prps,
    )


@dataclass(frozen=True, kw_only=True)
class CleanupReport:
    removed_worktrees: tuple[str, ...]
    deleted_branches: tuple[str, ...]
    removed_files: tuple[str, ...]
    refused: tuple[str, ...]  # what was kept because it holds unmerged work (needs --force)


def cleanup_batch(repo: git.Repo, state: StateDir, path: Path, *, force: bool) -> CleanupReport:
    view = batch_status(repo, path)
    target = f"refs/heads/{view.target}"
    removed: list[str] = []
    branches: list[str] = []
    refused: list[str] = []
    for prp in view.prps:
        unmerged = prp.branch_exists and not repo.is_ancestor(f"refs/heads/{prp.branch}", target)
        if unmerged and not force:
            refused.append(
                f"{prp.id}: branch {prp.branch} has commits not on {view.target} "
                f"(worktree {prp.worktree})"
            )
            continue
        if prp.worktree_exists:
            repo.remove_worktree(Path(prp.worktree), force=True)
            removed.append(prp.worktree)
        if prp.branch_exists:
            branches.append(prp.branch)
    if branches:
        repo.delete_branches(branches)
    repo.prune_worktrees()
    files: list[str] = []
    if not refused:
        for leftover in (path, state.journal(view.batch_id)):
            if leftover.exists():
                leftover.unlink()
                files.append(str(leftover))
    return CleanupReport(
        removed_worktrees=tuple(removed),
        deleted_branches=tuple(branches),
        removed_files=tuple(files),
        refused=tuple(refused),
    )
