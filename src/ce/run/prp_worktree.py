"""A PRP's own worktree: made (or adopted from an earlier run), and the status commit that
marks the PRP completed on its branch."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ce import fsio, git
from ce.core import names
from ce.core.events import Listener, Notice, NoticeLevel
from ce.fsio import write_atomic
from ce.prp.model import Prp
from ce.run import worktree_env

if TYPE_CHECKING:  # a Ray node imports this module for `save_leftovers` alone
    from ce.run.load import BatchContext
    from ce.run.state import Journal

WIP_SUBJECT = "{prp_id}: WIP - uncommitted work saved by ce"


def ensure_worktree(
    ctx: BatchContext, prp: Prp, *, journal: Journal, emit: Listener, may_exist: bool
) -> tuple[str, bool]:
    """The worktree's base commit, and whether the worktree is new."""
    repo, path, branch = ctx.repo, ctx.worktree(prp.id), ctx.branch(prp.id)
    if may_exist:
        _clear_debris(ctx, prp, path, emit)
    if may_exist and repo.branch_exists(branch):
        if not path.exists():
            journal.intent("worktree", prp=prp.id, path=str(path), branch=branch, adopt=True)
            sparse = worktree_env.sparse_dirs(ctx.worktree_settings, prp, f"refs/heads/{branch}")
            repo.add_worktree_for_branch(path, branch, sparse=sparse)
        # Not the recorded base: if the target was merged into the branch since (a conflict
        # resolved by hand), the work to judge starts from that merge.
        base = repo.merge_base(branch, ctx.target)
        assert base is not None, "a PRP branch always shares history with its target"
        journal.fact("worktree", prp=prp.id, base=base, adopted=True)
        return base, False
    journal.intent("worktree", prp=prp.id, path=str(path), branch=branch)
    target = f"refs/heads/{ctx.target}"
    sparse = worktree_env.sparse_dirs(ctx.worktree_settings, prp, target)
    # A first run's check_leftovers, or the lookup above, found no such branch; the base is
    # the target's tip as the add found it (it says which).
    base = repo.add_worktree(path, branch, target, sparse=sparse, branch_absent=True)
    journal.fact("worktree", prp=prp.id, base=base)
    return base, True


def save_leftovers(repo: git.Repo, prp_id: str, emit: Listener) -> bool:
    """Work is never lost: whatever the executor left uncommitted becomes a checkpoint.

    True when nothing is left here but what is committed (no ignored file either)."""
    changed, ignored = repo.uncommitted()
    if changed and repo.commit_all(WIP_SUBJECT.format(prp_id=prp_id)) is not None:
        emit(Notice(level=NoticeLevel.INFO, prp=prp_id, message="committed leftover changes"))
    return not ignored


def phases_done(repo: git.Repo, prp: Prp, base: str) -> set[int]:
    return names.phases_done((c.subject for c in repo.commits(base, "HEAD")), prp.id)


def adopted(
    repo: git.Repo,
    prp: Prp,
    base: str,
    left_at: str | None,
    log: Path,
    *,
    fresh: bool,
    emit: Listener,
) -> tuple[set[int], str | None]:
    """An earlier run's worktree (not `fresh`): what it left uncommitted committed, and the
    phases done; and where the user's own commits start (None: there are none). Commits the user
    added on top of `left_at`, the head ce judged when the PRP last stopped, finish it: every
    phase counts as done and the branch is validated as it stands, the executor not launched
    again."""
    if fresh:
        return set(), None
    yours = user_commits(repo, left_at, log)  # before ce commits the leftovers
    save_leftovers(repo, prp.id, emit)
    if yours:
        return {phase.number for phase in prp.phases}, left_at
    return phases_done(repo, prp, base), None


def user_commits(repo: git.Repo, left_at: str | None, log: Path) -> bool:
    """Whether the user committed on the branch since ce last judged it at `left_at`: those
    commits finish the PRP (any subject). The tree is validated like any other before it can
    reach the target, so a subject adds no safety; uncommitted changes are not this: ce
    commits them as a checkpoint and the executor goes on with the phases left."""
    head = repo.rev_parse("HEAD")
    if left_at is None or head == left_at or not repo.is_ancestor(left_at, head):
        return False
    fsio.append_log(
        log,
        f"\n[ce] your commits since ce stopped ({left_at[:10]}..{head[:10]}) finish it: "
        "validated as it stands, the executor is not launched again\n",
    )
    return True


def unsigned(repo: git.Repo) -> str | None:
    """Why the executor's commits failed when it is git's signing (`commit.gpgsign` without a
    working key), in words with the fix; None when signing is not the cause."""
    why = repo.signing_failure()
    if why is None:
        return None
    fix = "configure a key or set commit.gpgsign=false for the worktree"
    return f"commit signing failed ({why}): {fix}"


def fenced_off(worktree: Path, branch: str) -> str | None:
    """Why the PRP fails when its executor tried to move refs not its own (the fence refused
    it: `git.fence`), or None."""
    refs = git.fence.refused(worktree)
    if not refs:
        return None
    shown = ", ".join(refs[:5]) + (f" and {len(refs) - 5} more" if len(refs) > 5 else "")
    return f"the executor tried to update {shown} (refused: it may update only {branch})"


def _clear_debris(ctx: BatchContext, prp: Prp, path: Path, emit: Listener) -> None:
    """A directory without `.git` at the worktree path is what an interrupted `worktree add`
    leaves: no executor ever ran in it, so there is no work in it to keep."""
    if path.is_dir() and not (path / ".git").exists():
        emit(Notice(level=NoticeLevel.INFO, prp=prp.id, message=f"removing debris {path}"))
        shutil.rmtree(path)
        ctx.repo.prune_worktrees()


def mark_completed(ctx: BatchContext, prp: Prp, worktree: Path, today: date) -> str | None:
    """`status: completed` in the PRP file, committed on the branch so that it lands with the
    merge itself: merged and marked completed are one and the same step."""
    relpath = ctx.relpath(prp)
    if relpath is None or not (worktree / relpath).is_file():
        return None  # the PRP file is not in the repository: nothing to mark
    from ce.prp.parse import read_prp_text  # not at load: nothing a Ray node calls needs it
    from ce.prp.write import set_status_text

    path = worktree / relpath
    text = read_prp_text(path)
    updated = set_status_text(text, "completed", today, where=str(path))
    if updated == text:
        return None
    # The temporary file outside the worktree: killed midway, no stray file is left for the
    # next checkpoint commit to pick up. Not fsynced: git records it at once, and a run cut
    # off before that marks it again.
    write_atomic(path, updated, temp_dir=ctx.state.scratch(prp.id), durable=False)
    return git.Repo(worktree).commit_tracked([relpath], f"{prp.id}: status completed")
