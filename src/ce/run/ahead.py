"""Worktrees made ahead: while every slot is taken, the worktree of the PRP that starts next is
made (and fenced) on a thread of its own (the scheduler's `Prepare`), so that a slot freed is
a launch at once. A checkout of a large repository takes seconds, and at `--max-parallel 1`
each one was on the batch's critical path.

Only a PRP's first attempt in a fresh run is made ahead (its worktree and branch cannot exist
yet: `ensure_worktree` with nothing to adopt), one at a time. A worktree made ahead is recorded
in the journal like any other (before and after it is made), so a run killed meanwhile resumes
with it as with one whose agent never launched. A run that ends without starting its PRP (a
failure ends the batch, the budget is spent) removes it again, and its branch if it is still at
the commit it was made from: nothing ran there. An interrupted run leaves it for `--resume`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from ce import git
from ce.core.events import Listener, Notice, NoticeLevel
from ce.prp.model import Prp
from ce.run import prp_worktree, tidy
from ce.run.assignment import Assignment, Crewmates
from ce.run.load import BatchContext
from ce.run.state import Journal

Made = tuple[str, bool]  # what `ensure_worktree` returns: the base, and whether it is new


def made_or_make(made: Future[Made] | None, crew: Crewmates, job: Assignment) -> Made:
    """A starting PRP's worktree: the one made ahead (its failure is this PRP's), or made now."""
    if made is not None:
        return made.result()
    return make(crew.ctx, job.prp, crew.journal, crew.emit, may_exist=job.may_exist)


def make(ctx: BatchContext, prp: Prp, journal: Journal, emit: Listener, *, may_exist: bool) -> Made:
    """A PRP's worktree (made, or adopted from an earlier run), fenced: only its branch moves."""
    made = prp_worktree.ensure_worktree(ctx, prp, journal=journal, emit=emit, may_exist=may_exist)
    git.fence.install(ctx.repo, ctx.worktree(prp.id), ctx.branch(prp.id))
    return made


class Ahead:
    def __init__(self, ctx: BatchContext, journal: Journal, emit: Listener) -> None:
        self.ctx, self.journal, self.emit = ctx, journal, emit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ce-ahead")
        self._made: dict[str, Future[Made] | None] = {}  # None: not made ahead after all

    def names(self) -> frozenset[str]:
        """The PRPs asked for and not started yet (the scheduler asks for one more when none)."""
        return frozenset(self._made)

    def prepare(self, prp_id: str, *, may_exist: bool) -> None:
        if may_exist:
            self._made[prp_id] = None  # made by its worker, which may adopt what is there
            return
        self._made[prp_id] = self._pool.submit(
            make, self.ctx, self.ctx.prp(prp_id), self.journal, self.emit, may_exist=False
        )

    def take(self, prp_id: str) -> Future[Made] | None:
        """The worktree being made for `prp_id`, which starts now (None: its worker makes it)."""
        return self._made.pop(prp_id, None)

    def close(self, *, interrupted: bool) -> None:
        """The run is over: what is being made is waited for; the worktrees of PRPs that never
        started are removed unless the run was interrupted (`--resume` takes them as they are)."""
        self._pool.shutdown(wait=True)
        made, self._made = self._made, {}
        if interrupted:
            return
        for prp_id, future in made.items():
            if future is None or future.exception() is not None:
                continue  # a failed add removed what it made
            self._remove(prp_id, future.result()[0])

    def _remove(self, prp_id: str, base: str) -> None:
        """Only ce's checkout is in it; its branch goes only if still at `base` (kept if moved)."""
        path, branch = self.ctx.worktree(prp_id), self.ctx.branch(prp_id)
        if not tidy.remove_worktree_at(self.ctx, self.journal, prp_id, path, self.emit):
            return
        try:
            self.ctx.repo.delete_ref(f"refs/heads/{branch}", base)
        except git.GitError as exc:
            message = f"could not delete the unused branch {branch}: {exc}"
            self.emit(Notice(level=NoticeLevel.WARNING, prp=prp_id, message=message))
