"""What a run cleans up after itself: merged worktrees and branches, the integration worktree;
and the one commit it adds to the target itself (`.ce/tmp/` ignored)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ce import git
from ce.core.events import Listener, Notice, NoticeLevel
from ce.run.load import BatchContext
from ce.run.merge import MergeLane
from ce.run.record import PrpRecord
from ce.run.state import Journal

IGNORE_LINE = ".ce/tmp/"


def ensure_ignored(ctx: BatchContext, lane: MergeLane, emit: Listener) -> None:
    if ctx.repo.is_ignored(f"{IGNORE_LINE}checkpoint.json"):
        return
    current = ctx.repo.read_blob(f"refs/heads/{ctx.target}", ".gitignore") or ""
    text = current + ("" if not current or current.endswith("\n") else "\n") + IGNORE_LINE + "\n"
    if not lane.commit_file(".gitignore", text, "ce: ignore .ce/tmp/"):
        message = f"could not add {IGNORE_LINE} to .gitignore; add it yourself"
        emit(Notice(level=NoticeLevel.WARNING, message=message))


def remove_worktree(ctx: BatchContext, journal: Journal, record: PrpRecord, emit: Listener) -> None:
    remove_worktree_at(ctx, journal, record.id, Path(record.info.worktree), emit)


def remove_worktree_at(
    ctx: BatchContext, journal: Journal, prp_id: str, path: Path, emit: Listener
) -> bool:
    """Remove `prp_id`'s worktree at `path` (journaled), warning if git cannot; True when it is
    gone (or was never there)."""
    if not path.exists():
        return True
    journal.intent("remove-worktree", prp=prp_id, path=str(path))
    try:
        ctx.repo.remove_worktree(path, force=True)
    except git.GitError as exc:
        message = f"could not remove {path}: {exc}"
        emit(Notice(level=NoticeLevel.WARNING, prp=prp_id, message=message))
        return False
    return True


def clean_up(
    ctx: BatchContext, journal: Journal, merged: Iterable[PrpRecord], emit: Listener
) -> None:
    """Merged PRPs' worktrees and branches go; failed ones are kept for debugging."""
    merged = list(merged)
    for record in merged:
        remove_worktree(ctx, journal, record, emit)
    branches = [r.info.branch for r in merged]  # one call; names already gone are fine
    if branches:
        journal.intent("delete-branches", branches=branches)
        ctx.repo.delete_branches(branches)
    for integration in ctx.integration_worktrees():
        if integration.exists():
            ctx.repo.remove_worktree(integration, force=True)
    ctx.repo.prune_worktrees()
    ctx.repo.maintain()
    journal.fact("cleaned", merged=[r.id for r in merged])
