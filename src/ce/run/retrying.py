"""Retries at the start of a resumed run (`--retry-prp`, `--stage N --retry`): each PRP's earlier
attempt is set aside on `<branch>-attempt-N` (its uncommitted work committed first, its worktree
removed), then the ledger starts it afresh from the target. What the journal and the checkpoint
say decides (`run.retry_request`), so a run killed halfway finishes the same retries on
`--resume`, each once.
"""

from __future__ import annotations

from collections.abc import Callable

from ce import git
from ce.core.events import Listener, Notice, NoticeLevel
from ce.run.ledger import Ledger
from ce.run.load import BatchContext
from ce.run.prp_worktree import save_leftovers
from ce.run.retry_request import ATTEMPT, attempt_branch, journal_retries
from ce.run.state import Journal


def apply(
    ctx: BatchContext,
    ledger: Ledger,
    journal: Journal,
    emit: Listener,
    release: Callable[[str], None],
) -> None:
    """The retries asked for now, and those a killed run left half done or unrecorded."""
    found = journal_retries(Journal.read(ctx.state.journal(ctx.batch_id)))
    todo = dict(found.unfinished)  # PRP → (branch, kept): set aside, then the fact
    fresh = [p for p in ctx.options.retry if p in ledger and p not in todo]
    existing = _attempt_branches(ctx.repo, [ledger.get(p).info.branch for p in fresh])
    for prp_id in fresh:
        branch = ledger.get(prp_id).info.branch
        if ctx.repo.branch_exists(branch):
            kept = attempt_branch(branch, existing)
            journal.intent("retry", prp=prp_id, branch=branch, kept=kept)  # before any effect
            todo[prp_id] = (branch, kept)
    for prp_id, (branch, kept) in todo.items():
        if prp_id in ledger:
            _set_aside(ctx, journal, prp_id, (branch, kept), emit)
            release(prp_id)  # the objects the lane held for it: its kept branch holds them
            journal.fact("retried", prp=prp_id, kept=kept)
    for prp_id in ledger.ids():
        names = (*found.kept.get(prp_id, ()), *([todo[prp_id][1]] if prp_id in todo else []))
        recorded = set(ledger.get(prp_id).policy.kept)
        if prp_id in fresh or not recorded.issuperset(names):
            ledger.retry(prp_id, names)


def _set_aside(
    ctx: BatchContext, journal: Journal, prp_id: str, names: tuple[str, str], emit: Listener
) -> None:
    """The earlier attempt on `kept`: nothing of it is lost. Each step is skipped when a killed
    run already made it."""
    branch, kept = names
    path = ctx.worktree(prp_id)
    if (path / ".git").exists():
        save_leftovers(git.Repo(path), prp_id, emit)
        journal.intent("remove-worktree", prp=prp_id, path=str(path))
        ctx.repo.remove_worktree(path, force=True)
    if ctx.repo.branch_exists(branch) and not ctx.repo.branch_exists(kept):
        ctx.repo.rename_branch(branch, kept)
    message = f"runs again from {ctx.target}; its earlier attempt is kept on branch {kept}"
    emit(Notice(level=NoticeLevel.INFO, prp=prp_id, message=message))


def _attempt_branches(repo: git.Repo, branches: list[str]) -> list[str]:
    tips = repo.ref_tips([f"refs/heads/{b}{ATTEMPT}*" for b in branches])
    return [ref.removeprefix("refs/heads/") for ref in tips]
