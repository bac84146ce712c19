"""The engine: the loop that owns the threads and applies the scheduler's actions.

Threads: this one (the loop), one pool thread per PRP in flight (`Worker`), the monitor and the
merge lane. Every change to a PRP goes through the ledger; workers and the lane hand their
results to this thread through one inbox, and `Settler` decides what follows from each.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from datetime import date

from ce.core.errors import CeError, NextStep, Step
from ce.core.events import (
    BatchFinished,
    BatchStarted,
    BudgetReached,
    Listener,
    Notice,
    NoticeLevel,
    PrpState,
    stamping,
)
from ce.core.outcome import BatchStatus
from ce.run import repair, retrying, scheduler, selection, tidy, worktree_env
from ce.run.checkpoint import Checkpoint
from ce.run.crew import Crew, WorkDone
from ce.run.gate import LaunchGate, stagger_seconds
from ce.run.guard import Guard
from ce.run.hooks import run_hook
from ce.run.integration import prepare_integration
from ce.run.lane import LaneDriver, Merged, Reviewed, Upstream, lane_settings
from ce.run.ledger import Ledger
from ce.run.load import BatchContext, check_clean, check_leftovers
from ce.run.merge import MergeLane, MergeRequest
from ce.run.outcome import BatchOutcome, Recorder
from ce.run.reasons import BudgetSpent, MergesLost, Reason
from ce.run.review import StageReviewer, stage_merges
from ce.run.settle import Settler
from ce.run.state import Journal

A = scheduler


class Engine:
    def __init__(
        self,
        ctx: BatchContext,
        listener: Listener,
        *,
        describe: Callable[[Reason], str],
        today: date | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        listener = stamping(listener, clock)  # events are stamped here, from one clock
        self.ctx, self.emit = ctx, listener
        self.plan, self.settings = selection.scheduling(ctx)
        stages = len(self.plan.stages)
        self.ledger = Ledger(selection.select(ctx, self.plan.stage_of), stages, listener, clock)
        self.journal = Journal(ctx.state.journal(ctx.batch_id))
        self.inbox: queue.Queue[object] = queue.Queue()
        lane = MergeLane(
            checkout=ctx.repo,
            target=ctx.target,
            integration=ctx.integration_worktree,
            config=ctx.config.validation,
            journal=self.journal,
            listener=listener,
            resuming=ctx.options.resume,
            on_integration_created=lambda path: prepare_integration(ctx, path),
            batch_id=ctx.batch_id,  # its objects are held under refs/ce/<batch>/
        )
        env = dict(os.environ) | worktree_env.lane_variables(ctx.worktree_settings)  # port
        self.driver = LaneDriver(
            lane=lane,
            reviewer=StageReviewer(ctx, env, listener),
            journal=self.journal,
            repo=ctx.repo,
            inbox=self.inbox,
            env=env,  # its push_to is set by prepare() with --push
            settings=lane_settings(ctx),
        )
        self.guard = Guard(ctx.repo, ctx.target)
        self.settle = Settler(ctx, self.ledger, self.journal, listener, lane.release)
        self.crew = Crew(
            ctx,
            ledger=self.ledger,
            journal=self.journal,
            emit=listener,
            gate=LaunchGate(stagger_seconds(ctx.config)),
            inbox=self.inbox,
            slots=self.settings.slots,
            today=today,
        )
        self.recorder = Recorder(ctx, self.ledger, describe, started_at=clock())

    # -- before the run -----------------------------------------------------------------------

    def prepare(self) -> bool:
        """Readiness checks that need git; False when a resumed batch has nothing left to do."""
        ctx = self.ctx
        # A run killed mid fast-forward of the checkout: finish it first (ce's own files only).
        self.driver.lane.recover()
        check_clean(ctx)
        if ctx.config.lane.push:
            upstream = ctx.repo.upstream(ctx.target)
            if upstream is None:
                raise CeError(
                    f"--push needs an upstream for {ctx.target}: set one with "
                    f"`git branch --set-upstream-to=origin/{ctx.target}`, or drop --push."
                )
            self.driver.push_to = Upstream(remote=upstream[0], branch=upstream[1])
        repair.report_user_locks(ctx.repo, ctx.root, ctx.target, self.emit)
        path = ctx.state.checkpoint(ctx.batch_id)
        if ctx.options.resume:
            saved = selection.saved_or_rebuilt(ctx, self.driver.lane.find_merge, self.emit)
            return self._resume(saved)
        if path.exists() and selection.unfinished_before(ctx):
            raise CeError(
                f"Batch {ctx.batch_id} has an unfinished run ({path}).",
                next_step=NextStep(step=Step.RESUME_OR_CLEANUP, batch_id=ctx.batch_id),
            )
        check_leftovers(ctx, self.ledger.ids())
        selection.repair_own(ctx, [], self.emit)
        return bool(self.ledger.ids())

    def _resume(self, saved: Checkpoint) -> bool:
        selection.stop_stale_agents(self.ctx, self.emit)
        records = selection.resumed(
            self.ctx, saved, self.ledger.records(), self.plan.stage_of, self.driver.lane.find_merge
        )
        selection.repair_own(self.ctx, records, self.emit)  # the agents are stopped
        self.ledger.restore(records)
        retrying.apply(self.ctx, self.ledger, self.journal, self.emit, self.driver.lane.release)
        self.recorder.elapsed_before = saved.times.elapsed_seconds
        for stage in saved.failed_reviews():  # a failed review is repeated before going on
            self.ledger.review_again(stage)
        return any(r.state is not PrpState.MERGED for r in records)

    def finish_resumed(self) -> BatchOutcome:
        """Resume found every PRP merged: finish what the earlier run may not have (cleanup)."""
        self._finish(BatchStatus.COMPLETED)
        return self.recorder.outcome(BatchStatus.COMPLETED)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> BatchOutcome:
        # The checkpoint exists before any effect: whatever happens next, --resume finds it.
        self.recorder.checkpoint(BatchStatus.IN_PROGRESS)
        self.journal.fact(
            "start", batch=self.ctx.batch_id, target=self.ctx.target, resume=self.ctx.options.resume
        )
        tidy.ensure_ignored(self.ctx, self.driver.lane, self.emit)
        self.guard.start()
        self._announce()
        self.crew.monitor.start()
        driver = self.driver
        driver.start()
        status = BatchStatus.IN_PROGRESS
        try:
            for stage in self.ledger.reviewing():
                driver.review(stage_merges(self.ctx, self.ledger.records(), stage))
            self._loop(driver)
            self._check_outside(None)
            status = self._final_status()
            self._hook("post_batch", self.ctx.config.hooks.post_batch, None)
        except BaseException:  # Ctrl-C, or the environment (a full disk): stop, resumable
            status = BatchStatus.INTERRUPTED
            self.crew.stop_all()
            raise
        finally:
            driver.close()
            self.crew.close(interrupted=status is BatchStatus.INTERRUPTED)
            if status is BatchStatus.INTERRUPTED:
                self._drain()
                self.ledger.interrupted_in_flight()
            self._finish(status)
        return self.recorder.outcome(status)

    def _announce(self) -> None:
        records = self.ledger.records()
        self.emit(
            BatchStarted(
                batch_id=self.ctx.batch_id,
                executor=self.ctx.executor.name,
                stages=self.plan.stages,
                prps=tuple(r.info for r in records),
                resumed=self.ctx.options.resume,
            )
        )
        self.ledger.announce_merged_earlier()

    def _loop(self, driver: LaneDriver) -> None:
        merged: str | None = None
        while True:
            hold = A.Hold(
                paused=self.ledger.pause_reason() is not None,
                interrupted=self.crew.stopping.is_set(),
                budget_spent=self.ledger.budget_reason() is not None,
            )
            ahead = self.crew.ahead.names()
            actions = A.next_actions(self.ledger.view(), self.plan, self.settings, hold, ahead)
            if any(isinstance(a, A.Stop) for a in actions):
                return
            for action in actions:
                self._apply(action, driver)
            if merged is not None:  # after the next starts: off the critical path
                tidy.remove_worktree(self.ctx, self.journal, self.ledger.get(merged), self.emit)
                merged = None
            self.recorder.changed(bool(actions))  # what started or entered the lane
            if any(not isinstance(a, A.Start | A.Prepare | A.SendToLane) for a in actions):
                continue  # what they changed may allow more at once
            try:
                message = self.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            merged = self._receive(message, driver)
            self.recorder.changed()

    def _apply(self, action: A.Action, driver: LaneDriver) -> None:
        if isinstance(action, A.Start):
            ids = tuple(p for p in self.plan.stages[action.stage - 1] if p in self.ledger)
            self.ledger.stage_started(action.stage, ids)
            self.crew.start(action.prp, action.stage)
        elif isinstance(action, A.Prepare):
            self.crew.prepare(action.prp)
        elif isinstance(action, A.Skip):
            self.ledger.skip(action.prp, f"dependency {action.blocker} did not merge")
        elif isinstance(action, A.SendToLane):
            self._send_to_lane(action.prp, driver)
        elif isinstance(action, A.FinishStage):
            review = self._check_outside(action.stage) and action.review
            self.ledger.stage_finished(action.stage, review=review)
            if review:
                driver.review(stage_merges(self.ctx, self.ledger.records(), action.stage))
            else:
                self._hook("post_stage", self.ctx.config.hooks.post_stage, action.stage)
        elif isinstance(action, A.BudgetSpent):
            self.ledger.spent(BudgetSpent(budget_usd=action.budget_usd, spent_usd=action.spent_usd))
            _say_budget_spent(self.emit, action)

    def _receive(self, message: object, driver: LaneDriver | None) -> str | None:
        """Apply one result; the PRP just merged, whose worktree can go."""
        if isinstance(message, WorkDone):
            self.crew.done(message.prp_id)
            self.settle.worked(
                message.prp_id, message.result, interrupted=self.crew.stopping.is_set()
            )
        elif isinstance(message, Merged):
            result = message.result
            if result.onto is not None and result.tip is not None:
                self.guard.merged(result.onto, result.tip)
            if self.settle.merged(message):
                return message.prp_id
        elif isinstance(message, Reviewed):
            self.settle.reviewed(message.review)
            self._hook("post_stage", self.ctx.config.hooks.post_stage, message.review.stage)
        return None

    def _drain(self) -> None:
        """Interrupted: what the workers brought back before they stopped is recorded."""
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(message, WorkDone):
                self._receive(message, None)

    # -- starting PRPs, feeding the lane ------------------------------------------------------

    def _send_to_lane(self, prp_id: str, driver: LaneDriver) -> None:
        record = self.ledger.get(prp_id)
        assert record.head is not None
        self.ledger.to_lane(prp_id)
        driver.merge(
            MergeRequest(
                prp_id=prp_id,
                title=self.ctx.prp(prp_id).title,
                branch=record.info.branch,
                head=record.head,
            )
        )

    # -- the end ------------------------------------------------------------------------------

    def _hook(self, name: str, command: str, stage: int | None) -> None:
        result = run_hook(
            name,
            command,
            cwd=self.ctx.root,
            batch_id=self.ctx.batch_id,
            stage=stage,
            log=self.ctx.state.root / "logs" / "hooks.log",
            emit=self.emit,
            timeout_minutes=self.ctx.config.hooks.timeout_minutes,
        )
        self.ledger.hook_ran(result)

    def _check_outside(self, stage: int | None) -> bool:
        """Every merge ce made still on the target (else the batch pauses, naming them), and
        what changed outside the worktrees said with the PRPs that ran; True when all is there."""
        ran = [p for p in self.plan.stages[stage - 1] if p in self.ledger] if stage else []
        ran += [p for p in self.ledger.in_flight() if p not in ran]
        who = f" (while {', '.join(ran)} ran)" if ran else " (during the batch)"
        for news in self.guard.news():
            self.emit(Notice(level=NoticeLevel.WARNING, message=f"{news}{who}"))
        lost = self.guard.lost(self.ledger.records())
        if not lost:
            return True
        for prp_id in lost:
            self.ledger.merge_lost(prp_id, self.ctx.target)
        self.ledger.pause(MergesLost(prps=tuple(lost), target=self.ctx.target))
        self.emit(
            Notice(
                level=NoticeLevel.ERROR,
                message=f"no longer on {self.ctx.target}: the merges of {', '.join(lost)}",
            )
        )
        return False

    def _final_status(self) -> BatchStatus:
        if self.ledger.pause_reason() is not None:
            return BatchStatus.PAUSED
        if all(r.state is PrpState.MERGED for r in self.ledger.records()):
            return BatchStatus.COMPLETED
        return BatchStatus.FAILED

    def _finish(self, status: BatchStatus) -> None:
        self.recorder.checkpoint(status)
        if status is not BatchStatus.INTERRUPTED:
            merged = [r for r in self.ledger.records() if r.state is PrpState.MERGED]
            tidy.clean_up(self.ctx, self.journal, merged, self.emit)
        if status in (BatchStatus.COMPLETED, BatchStatus.FAILED):
            # Nothing is left to resume: the objects the lane held are the branches' or gone.
            self.driver.lane.release_all()
            self.recorder.checkpoint(status)
        self.journal.fact("end", status=status.value)
        self.journal.close()
        self.emit(BatchFinished(status=status.value.lower()))


def _say_budget_spent(emit: Listener, action: A.BudgetSpent) -> None:
    emit(BudgetReached(budget_usd=action.budget_usd, spent_usd=action.spent_usd))
    emit(
        Notice(
            level=NoticeLevel.ERROR,
            message=f"batch budget ${action.budget_usd:.2f} reached "
            f"(${action.spent_usd:.2f} spent): no new PRP starts",
        )
    )
