"""The engine: schedule PRPs, run them in parallel, validate, merge one by one, checkpoint.

The main thread owns every decision and the records; pool threads run PRPs (worktree, executor,
validation) and the lane thread merges. They talk through one inbox, so there is no shared
mutable state to reason about beyond the records' lock for readers (the dashboard).
"""

from __future__ import annotations

import enum
import os
import queue
import shlex
import signal
import threading
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from ce import git, proc
from ce.core.errors import CeError, CeFailure
from ce.core.events import (
    BatchFinished,
    BatchStarted,
    Event,
    Listener,
    Notice,
    PhaseCommitted,
    PrpChanged,
    PrpInfo,
    PrpState,
    StageFinished,
    StageStarted,
)
from ce.plan.schedule import critical_path_priority
from ce.run import worktree_env
from ce.run.agent_review import agent_review
from ce.run.gate import LaunchGate, stagger_seconds
from ce.run.load import BatchContext, check_clean, check_leftovers
from ce.run.merge import MergeLane, MergeOutcome, MergeRequest, MergeResult
from ce.run.monitor import Monitor
from ce.run.review import MergedPrp, Review, review_stage
from ce.run.state import CHECKPOINT_VERSION, Journal, PrpRecord, read_checkpoint, write_json_atomic
from ce.run.validate import CHECKPOINT
from ce.run.worker import Worker, WorkResult
from ce.secrets import mask

IGNORE_LINE = ".ce/tmp/"
MAX_RERUNS = 2


class BatchStatus(enum.Enum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"
    INTERRUPTED = "INTERRUPTED"
    IN_PROGRESS = "IN_PROGRESS"


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    batch_id: str
    status: BatchStatus
    records: tuple[PrpRecord, ...]
    stages: tuple[tuple[str, ...], ...]
    started_at: float
    finished_at: float
    target: str
    pause_reason: str | None
    checkpoint: Path
    warnings: tuple[str, ...]
    kept_worktrees: tuple[str, ...]
    nothing_to_do: bool = False
    reviews: tuple[dict[str, Any], ...] = ()
    done_before: frozenset[str] = frozenset()  # PRPs of the plan done before this run
    hooks: tuple[dict[str, Any], ...] = ()
    budget_reason: str | None = None  # the batch budget stopped new PRPs from starting

    @property
    def exit_code(self) -> int:
        return 0 if self.status is BatchStatus.COMPLETED else 1


@dataclass(frozen=True, kw_only=True)
class _Worked:
    result: WorkResult


@dataclass(frozen=True, kw_only=True)
class _Merged:
    prp_id: str
    result: MergeResult
    push_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class _ReviewRequest:
    stage: int


@dataclass(frozen=True, kw_only=True)
class _Reviewed:
    review: Review


class Orchestrator:
    def __init__(self, ctx: BatchContext, listener: Listener, *, today: date | None = None) -> None:
        self.ctx = ctx
        self._listener = listener
        self.today = today or date.today()
        self.lock = threading.RLock()
        self.inbox: queue.Queue[_Worked | _Merged | _Reviewed] = queue.Queue()
        self.lane_queue: queue.Queue[MergeRequest | _ReviewRequest | None] = queue.Queue()
        self.auto_review = ctx.config.auto_review and ctx.options.batch is not None
        self.reviewing: set[int] = set()
        self.lane_env = dict(os.environ) | worktree_env.lane_variables(ctx)  # CE_PORT_BASE
        self.reviews: dict[int, Review] = {}
        self.hook_results: list[dict[str, Any]] = []
        self.pending_reviews: list[int] = []
        self.push_to: tuple[str, str] | None = None
        self.reruns: dict[str, int] = {}
        self.resolving: set[str] = set()
        self.removals: list[PrpRecord] = []  # merged PRPs whose worktree is still there
        self.interrupted = threading.Event()
        self.pause_reason: str | None = None
        self.stop_after_stage = False
        self.running: dict[str, Worker] = {}
        self.in_lane: set[str] = set()
        self.sent_to_lane: set[str] = set()
        self.started_at = time.time()
        self.stage_of = {
            prp_id: number
            for number, ids in enumerate(ctx.plan.plan.stages, start=1)
            for prp_id in ids
        }
        self._plan_index = {p: n for n, p in enumerate(ctx.plan.plan.sorted_order)}
        self.eager = ctx.config.schedule == "eager"
        self.shares_files = _sharing(ctx.plan.plan.file_conflicts)
        self.priority = critical_path_priority(
            ctx.plan.plan.sorted_order,
            {p: ctx.prp(p).dependencies for p in ctx.plan.plan.sorted_order},
            {p: ctx.prp(p).estimated_hours or 0.0 for p in ctx.plan.plan.sorted_order},
        )
        self.records = self._select_records()
        self.journal = Journal(ctx.state.journal(ctx.batch_id))
        self.monitor = Monitor(ctx.repo, ctx.config.monitor, self.emit, self._on_tip)
        self.gate = LaunchGate(stagger_seconds(ctx.config))
        self.budget_reason: str | None = None
        self.lane = MergeLane(
            checkout=ctx.repo,
            target=ctx.target,
            integration=ctx.integration_worktree,
            config=ctx.config.validation,
            journal=self.journal,
            listener=self.emit,
            resuming=ctx.options.resume,
            on_integration_created=self._prepare_integration,
        )
        self.announced_stages: set[int] = set()

    # -- events -------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, PrpChanged) and event.prp in self.records:
                self.records[event.prp].state = event.state
            self._listener(event)

    # -- selection and resume -----------------------------------------------------------------

    def _select_records(self) -> dict[str, PrpRecord]:
        ctx = self.ctx
        wanted = [
            prp_id
            for prp_id in ctx.plan.plan.sorted_order
            if prp_id not in ctx.done
            and (ctx.options.stage is None or self.stage_of[prp_id] == ctx.options.stage)
        ]
        if ctx.options.stage is not None:
            self._check_earlier_stages(ctx.options.stage)
        return {prp_id: self._new_record(prp_id) for prp_id in wanted}

    def _new_record(self, prp_id: str) -> PrpRecord:
        prp = self.ctx.prp(prp_id)
        info = PrpInfo(
            id=prp_id,
            title=prp.title,
            stage=self.stage_of[prp_id],
            model=self.ctx.plan.models[prp_id],
            phases=len(prp.phases),
            branch=self.ctx.branch(prp_id),
            worktree=str(self.ctx.worktree(prp_id)),
        )
        return PrpRecord(info=info)

    def _check_earlier_stages(self, stage: int) -> None:
        stages = self.ctx.plan.plan.stages
        if not 1 <= stage <= len(stages):
            raise CeError(f"--stage {stage}: the plan has stages 1 to {len(stages)}.")
        pending = [p for s in stages[: stage - 1] for p in s if p not in self.ctx.done]
        if pending:
            earlier = "stage 1" if stage == 2 else f"stages 1-{stage - 1}"
            raise CeError(
                f"--stage {stage} needs {earlier} done, but "
                f"{', '.join(pending)} {'is' if len(pending) == 1 else 'are'} not completed. "
                "Run the earlier stages first (or the whole batch without --stage)."
            )

    def prepare(self) -> bool:
        """Readiness checks that need git; False when a resumed batch has nothing left to do."""
        check_clean(self.ctx)
        if self.ctx.config.push:
            self.push_to = self.ctx.repo.upstream(self.ctx.target)
            if self.push_to is None:
                raise CeError(
                    f"--push needs an upstream for {self.ctx.target}: set one with "
                    f"`git branch --set-upstream-to=origin/{self.ctx.target}`, or drop --push."
                )
        if self.ctx.options.resume:
            return self._resume()
        checkpoint = self.ctx.state.checkpoint(self.ctx.batch_id)
        if checkpoint.exists():
            previous = read_checkpoint(checkpoint)
            if previous.get("status") in ("IN_PROGRESS", "PAUSED", "INTERRUPTED"):
                raise CeError(
                    f"Batch {self.ctx.batch_id} has an unfinished run ({checkpoint}). "
                    f"Continue it with `ce batch-exe --batch {self.ctx.batch_id} --resume`, or "
                    f"remove it with `ce cleanup --batch {self.ctx.batch_id}`."
                )
        check_leftovers(self.ctx, list(self.records))
        return bool(self.records)

    def _resume(self) -> bool:
        data = read_checkpoint(self.ctx.state.checkpoint(self.ctx.batch_id))
        saved: dict[str, dict[str, Any]] = {}
        for stage in data.get("stages", {}).values():
            saved.update(stage.get("results") or {})
        self._stop_stale_agents()
        self.pending_reviews = sorted(
            int(n)
            for n, review in data.get("reviews", {}).items()
            if review.get("status") == "FAILED"
        )
        for prp_id in saved.keys() - self.records.keys():
            # Marked completed by its own merge before the interruption: still this run's,
            # to clean up and to report.
            if prp_id in self.ctx.done and prp_id in self.stage_of:
                self.records[prp_id] = self._new_record(prp_id)
        self.records = dict(sorted(self.records.items(), key=lambda kv: self._plan_index[kv[0]]))
        for prp_id, record in self.records.items():
            if prp_id in saved:
                record.load_json(saved[prp_id])
            record.pgid = None
            self._reconcile(record)
        return any(r.state is not PrpState.MERGED for r in self.records.values())

    def _stop_stale_agents(self) -> None:
        """Agents the dead run launched may still be working: stop them before relaunching.

        Only groups still working inside that PRP's worktree are stopped, so a reused group
        number (after a reboot) can never hit an unrelated process.
        """
        running: dict[str, int] = {}
        for entry in Journal.read(self.ctx.state.journal(self.ctx.batch_id)):
            if entry.get("fact") == "launched":
                running[str(entry["prp"])] = int(entry["pgid"])
            elif entry.get("fact") == "exited":
                running.pop(str(entry["prp"]), None)
        for prp_id, pgid in sorted(running.items()):
            worktree = self.ctx.worktree(prp_id)
            if proc.group_working_in(pgid, worktree):
                self.emit(
                    Notice(
                        level="warning",
                        prp=prp_id,
                        message=f"stopping its agent left "
                        f"running by the interrupted run (process group {pgid})",
                    )
                )
                proc.kill_pgid(pgid, self.ctx.config.monitor.grace_seconds)

    def finish_resumed(self) -> BatchOutcome:
        """Resume found every PRP merged: finish what the earlier run may not have (cleanup)."""
        self._cleanup()
        self._checkpoint(BatchStatus.COMPLETED)
        self.journal.fact("end", status=BatchStatus.COMPLETED.value)
        self.journal.close()
        return replace(self._outcome(BatchStatus.COMPLETED), nothing_to_do=True)

    def _reconcile(self, record: PrpRecord) -> None:
        """Git is the truth: merged means its merge commit is on the target."""
        repo, branch = self.ctx.repo, record.info.branch
        head = repo.try_rev_parse(f"refs/heads/{branch}") or record.head
        merge = None if head is None else self.lane.find_merge(record.id, head)
        if merge is not None:
            record.state = PrpState.MERGED
            record.merged_as = record.merged_as or merge
        else:
            record.state = PrpState.PENDING
            record.error = None
            record.merged_as = None

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> BatchOutcome:
        # The checkpoint exists before any effect: whatever happens next, --resume finds it.
        self._checkpoint(BatchStatus.IN_PROGRESS)
        self.journal.fact("start", batch=self.ctx.batch_id, resume=self.ctx.options.resume)
        self._ensure_ignored()
        self._announce()
        self.monitor.start()
        lane = threading.Thread(target=self._lane_loop, name="ce-merge-lane", daemon=True)
        lane.start()
        slots = self.ctx.config.max_parallel or max(1, len(self.records))
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="ce-prp")
        status = BatchStatus.IN_PROGRESS
        try:
            for stage in self.pending_reviews:  # a failed review is repeated before going on
                self.reviewing.add(stage)
                self.lane_queue.put(_ReviewRequest(stage=stage))
            self._loop(pool, slots)
            status = self._final_status()
            self._run_hook("post_batch", self.ctx.config.hooks.post_batch)
        except KeyboardInterrupt:
            status = BatchStatus.INTERRUPTED
            _exit_on_second_interrupt()
            self._interrupt()
            raise
        finally:
            self.lane_queue.put(None)
            # Interrupted: workers save what their agents left and return; nothing else runs.
            pool.shutdown(wait=True, cancel_futures=True)
            self.monitor.close()
            self._checkpoint(status)
            if status is not BatchStatus.INTERRUPTED:
                self._cleanup()
                self._checkpoint(status)
            self.journal.fact("end", status=status.value)
            self.journal.close()
            self.emit(BatchFinished(status=status.value.lower()))
        return self._outcome(status)

    def _announce(self) -> None:
        self.emit(
            BatchStarted(
                batch_id=self.ctx.batch_id,
                executor=self.ctx.executor.name,
                stages=self.ctx.plan.plan.stages,
                prps=tuple(r.info for r in self.records.values()),
                resumed=self.ctx.options.resume,
            )
        )
        for record in self.records.values():
            if record.state is PrpState.MERGED:
                self.emit(
                    PrpChanged(prp=record.id, state=PrpState.MERGED, message="merged earlier")
                )

    def _loop(self, pool: ThreadPoolExecutor, slots: int) -> None:
        while True:
            self._dispatch(pool, slots)
            self._feed_lane()
            while self.removals:
                self._remove_worktree(self.removals.pop())
            if not self.running and not self.in_lane and not self.reviewing:
                break
            try:
                message = self.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if isinstance(message, _Worked):
                self._on_worked(message.result)
            elif isinstance(message, _Merged):
                self._on_merged(message.prp_id, message.result)
                if message.push_error is not None:
                    self._on_push_rejected(message.push_error)
            else:
                self._on_reviewed(message.review)
            self._checkpoint(BatchStatus.IN_PROGRESS)

    # -- scheduling ---------------------------------------------------------------------------

    def _current_stage(self) -> int | None:
        unfinished = [self.stage_of[r.id] for r in self.records.values() if not r.state.finished]
        return min(unfinished) if unfinished else None

    def _dispatch(self, pool: ThreadPoolExecutor, slots: int) -> None:
        if self.pause_reason or self.interrupted.is_set() or self._over_budget():
            return
        if self.eager:
            self._dispatch_eager(pool, slots)
            return
        if self.reviewing:  # the next stage starts from a reviewed target
            return
        stage = self._current_stage()
        if stage is None:
            return
        stage_ids = self.ctx.plan.plan.stages[stage - 1]
        if self.stop_after_stage and not any(
            self.records[p].state is not PrpState.PENDING for p in stage_ids if p in self.records
        ):
            return
        for prp_id in stage_ids:
            record = self.records.get(prp_id)
            if record is None or record.state is not PrpState.PENDING or prp_id in self.running:
                continue
            if len(self.running) >= slots:
                return
            blocker = self._failed_dependency(prp_id)
            if blocker is not None:
                self._finish(record, PrpState.SKIPPED, f"dependency {blocker} did not merge")
                continue
            self._start(pool, record, stage)

    def _over_budget(self) -> bool:
        """Once what the agents reported spending reaches the batch budget, no PRP starts;
        the running ones finish. A resume with a higher budget goes on."""
        budget = self.ctx.config.batch_budget_usd
        if self.budget_reason is not None or budget is None:
            return self.budget_reason is not None
        spent = sum(r.cost_usd or 0.0 for r in self.records.values())
        waiting = any(r.state is PrpState.PENDING for r in self.records.values())
        if spent < budget or not waiting:
            return False
        self.budget_reason = (
            f"The batch budget of ${budget:.2f} is spent (${spent:.2f} reported by the agents), "
            "so no new PRP was started. To go on, raise it: "
            f"`ce batch-exe {_batch_args(self.ctx)} --resume --batch-budget-usd N` "
            "(or set batch_budget_usd in .ce/config.toml)."
        )
        self.emit(
            Notice(
                level="error",
                message=f"batch budget ${budget:.2f} reached (${spent:.2f} spent): "
                "no new PRP starts",
            )
        )
        return True

    def _dispatch_eager(self, pool: ThreadPoolExecutor, slots: int) -> None:
        """Start what is ready now: dependencies merged, no active PRP sharing a file, a free
        slot; the longest first, since the longest one bounds the batch."""
        if self.stop_after_stage:  # a failure without --continue-on-error: nothing new starts
            return
        ready = []
        for record in self.records.values():
            if record.state is not PrpState.PENDING or record.id in self.running:
                continue
            blocker = self._failed_dependency(record.id)
            if blocker is not None:
                self._finish(record, PrpState.SKIPPED, f"dependency {blocker} did not merge")
            elif self._dependencies_merged(record.id):
                ready.append(record)
        ready.sort(key=lambda r: (-self.priority[r.id], self._plan_index[r.id]))
        for record in ready:
            if len(self.running) >= slots:
                return
            if not self._shares_files_with_active(record.id):
                self._start(pool, record, self.stage_of[record.id])

    def _dependencies_merged(self, prp_id: str) -> bool:
        return all(
            dep not in self.records or self.records[dep].state is PrpState.MERGED
            for dep in self.ctx.prp(prp_id).dependencies
        )

    def _shares_files_with_active(self, prp_id: str) -> bool:
        """Active: started and not yet finished (running, validating or waiting to merge)."""
        return any(
            other in self.records
            and self.records[other].state not in (PrpState.PENDING,)
            and not self.records[other].state.finished
            for other in self.shares_files.get(prp_id, ())
        )

    def _failed_dependency(self, prp_id: str) -> str | None:
        for dep in self.ctx.prp(prp_id).dependencies:
            record = self.records.get(dep)
            if record is not None and record.state.finished and record.state is not PrpState.MERGED:
                return dep
        return None

    def _start(self, pool: ThreadPoolExecutor, record: PrpRecord, stage: int) -> None:
        if stage not in self.announced_stages:
            self.announced_stages.add(stage)
            ids = tuple(p for p in self.ctx.plan.plan.stages[stage - 1] if p in self.records)
            self.emit(StageStarted(stage=stage, prps=ids))
        worker = Worker(
            self.ctx,
            record.id,
            monitor=self.monitor,
            journal=self.journal,
            listener=self.emit,
            stage=stage,
            model=record.info.model,
            stopping=self.interrupted,
            today=self.today,
            may_exist=self.ctx.options.resume or record.attempts > 0,
            gate=self.gate,
        )
        if record.id in self.resolving:
            self.resolving.discard(record.id)
            worker.resolve_with = self.ctx.target
        self.running[record.id] = worker
        record.attempts += 1
        record.started_at = record.started_at or time.time()
        record.finished_at = None
        record.state = PrpState.PREPARING
        pool.submit(self._work, worker, record.base)

    def _work(self, worker: Worker, base: str | None) -> None:
        try:
            result = worker.run(base)
        except Exception as exc:  # a failure of this PRP must not take the batch down
            detail = "".join(traceback.format_exception(exc))
            _append_log(worker.log_path, detail)
            result = WorkResult(
                prp_id=worker.prp.id,
                state=PrpState.FAILED,
                base=base or "",
                head=None,
                phases_done=0,
                error=f"{type(exc).__name__}: {exc}".strip(),
            )
        self.inbox.put(_Worked(result=worker.with_usage(result)))

    def _on_worked(self, result: WorkResult) -> None:
        self.running.pop(result.prp_id, None)
        record = self.records[result.prp_id]
        record.base = result.base or record.base
        record.head = result.head
        record.phases_done = result.phases_done
        record.attempts += max(0, result.attempts - 1)  # relaunches within this start
        record.validation = result.validation
        record.disk_bytes = result.disk_bytes or record.disk_bytes
        record.add_usage(
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            session_id=result.session_id,
        )
        if result.state is PrpState.VALIDATED:
            self.emit(
                PrpChanged(
                    prp=record.id,
                    state=PrpState.VALIDATED,
                    message="validated",
                    cost_usd=record.cost_usd,
                )
            )
            return
        if self.interrupted.is_set():
            return
        self._finish(record, result.state, result.error)
        if not self.ctx.options.continue_on_error:
            self.stop_after_stage = True

    def _finish(self, record: PrpRecord, state: PrpState, error: str | None) -> None:
        record.error = error
        record.finished_at = time.time()
        self.emit(
            PrpChanged(prp=record.id, state=state, message=error or "", cost_usd=record.cost_usd)
        )
        self._maybe_stage_finished(self.stage_of[record.id])

    def _maybe_stage_finished(self, stage: int) -> None:
        ids = [p for p in self.ctx.plan.plan.stages[stage - 1] if p in self.records]
        if all(self.records[p].state.finished for p in ids) and stage in self.announced_stages:
            self.emit(StageFinished(stage=stage))
            self._after_stage(stage)

    def _after_stage(self, stage: int) -> None:
        """Review what the stage merged (in the lane, so the target holds still), then hooks."""
        merged = [
            p
            for p in self.ctx.plan.plan.stages[stage - 1]
            if p in self.records and self.records[p].state is PrpState.MERGED
        ]
        if self.auto_review and merged and not self.pause_reason:
            self.reviewing.add(stage)
            self.lane_queue.put(_ReviewRequest(stage=stage))
        else:
            self._run_hook("post_stage", self.ctx.config.hooks.post_stage, stage)

    def _review(self, stage: int) -> Review:
        """In the lane thread: the target from before the stage's first merge to its tip."""
        merged = [
            self.records[p]
            for p in self.ctx.plan.plan.stages[stage - 1]
            if p in self.records and self.records[p].merged_as
        ]
        first = min(merged, key=lambda r: r.finished_at or 0.0)
        assert first.merged_as is not None
        self.emit(Notice(level="info", message=f"stage {stage}: reviewing what it merged"))
        review = review_stage(
            checkout=self.ctx.repo,
            integration=self.ctx.integration_worktree,
            stage=stage,
            base=f"{first.merged_as}^1",
            tip=self.ctx.repo.rev_parse(f"refs/heads/{self.ctx.target}"),
            merged=[
                MergedPrp(
                    prp=self.ctx.prp(r.id),
                    merge=r.merged_as,
                    relpath=self.ctx.relpath(self.ctx.prp(r.id)),
                )
                for r in merged
                if r.merged_as
            ],
            config=self.ctx.config.validation,
            env=self.lane_env,
            on_created=self._prepare_integration,
        )
        if not review.passed or not self.ctx.config.review_agent:
            return review
        if self.ctx.executor.name == "script":
            self.emit(Notice(level="warning", message="review_agent: scripts cannot review"))
            return review
        verdict = agent_review(
            executor=self.ctx.executor,
            prps=[self.ctx.prp(r.id) for r in merged],
            repo_root=self.ctx.root,
            worktree=self.ctx.integration_worktree,
            batch_id=self.ctx.batch_id,
            stage=stage,
            target=self.ctx.target,
            scratch=self.ctx.state.root / "run" / f"review-stage-{stage}",
            log_path=self.ctx.state.root / "logs" / f"review-stage-{stage}.log",
            timeout_minutes=self.ctx.config.timeout_minutes,
        )
        findings = tuple(f"review agent: {f}" for f in verdict.findings)
        return replace(review, passed=verdict.passed, findings=review.findings + findings)

    def _prepare_integration(self, path: Path) -> None:
        """A new integration worktree gets what a PRP's worktree gets: `.worktreeinclude`
        files and `setup`, so the merged-tree checks run in the same environment."""
        log = self.ctx.state.root / "logs" / "integration.log"
        copied, _ = worktree_env.copy_included(self.ctx.root, path)
        if copied:
            _append_log(log, f"[ce] .worktreeinclude: copied {', '.join(copied[:20])}\n")
        if not self.ctx.config.setup.strip():
            return
        error = worktree_env.run_setup(
            self.ctx.config.setup,
            path,
            env=git.git_env(c_locale=False) | worktree_env.lane_variables(self.ctx),
            log_path=log,
            timeout_minutes=self.ctx.config.timeout_minutes,
            grace=self.ctx.config.monitor.grace_seconds,
            on_group=lambda _pgid: None,
        )
        if error is not None:
            self.ctx.repo.remove_worktree(path, force=True)  # prepared again next time
            raise CeFailure(f"the integration worktree's {error}")

    def _on_reviewed(self, review: Review) -> None:
        self.reviewing.discard(review.stage)
        self.reviews[review.stage] = review
        path = self.ctx.state.root / f"batch-{self.ctx.batch_id}-review-stage-{review.stage}.json"
        write_json_atomic(path, review.to_json())
        if review.passed:
            self.emit(Notice(level="info", message=f"stage {review.stage}: review PASSED"))
        else:
            findings = "\n".join(f"  - {f}" for f in review.findings)
            self.pause_reason = (
                f"The review of stage {review.stage} FAILED:\n{findings}\n"
                f"Fix it on {self.ctx.target} (commit the fix), then run "
                f"`ce batch-exe {_batch_args(self.ctx)} --resume`; the review runs again first."
            )
            self.emit(Notice(level="error", message=f"stage {review.stage}: review FAILED"))
        self._run_hook("post_stage", self.ctx.config.hooks.post_stage, review.stage)

    def _run_hook(self, name: str, command: str, stage: int | None = None) -> None:
        """`[hooks]` commands run in the checkout; a failure is reported, never fatal."""
        if not command.strip():
            return
        log = self.ctx.state.root / "logs" / "hooks.log"
        env = {**os.environ, "CE_BATCH_ID": self.ctx.batch_id, "CE_STAGE": str(stage or "")}
        try:
            done = proc.run(shlex.split(command), cwd=self.ctx.root, env=env, check=False)
            code, output = done.returncode, done.stdout + done.stderr
        except proc.ProcessError as exc:
            code, output = exc.returncode, str(exc)
        _append_log(log, f"[ce] {name} (stage {stage}): {command}\n{output}[ce] exit {code}\n")
        self.hook_results.append(
            {"hook": name, "stage": stage, "command": command, "exit_code": code}
        )
        level = "info" if code == 0 else "warning"
        self.emit(Notice(level=level, message=f"{name} hook `{command}` exited {code} (see {log})"))

    def _on_tip(self, prp_id: str, tip: str) -> None:
        """A branch moved (monitor thread): announce the checkpoint commits it brought."""
        record = self.records.get(prp_id)
        if record is None or record.base is None:
            return
        try:
            commits = self.ctx.repo.commits(record.base, tip)
        except git.GitError:
            return
        done = sorted({int(m["n"]) for c in commits if (m := CHECKPOINT.match(c.subject))})
        if len(done) > record.phases_done:
            record.phases_done = len(done)
            title = commits[-1].subject.split(" - ", 1)[-1]
            self.emit(
                PhaseCommitted(prp=prp_id, phase=done[-1], total=record.info.phases, title=title)
            )

    # -- the merge lane -----------------------------------------------------------------------

    def _feed_lane(self) -> None:
        """Stages mode: merge in plan order within the stage, as soon as the next is validated.
        Eager mode: every validated branch enters the lane at once."""
        if self.pause_reason:
            return
        if self.eager:
            for waiting in self.records.values():
                if waiting.state is PrpState.VALIDATED and waiting.id not in self.sent_to_lane:
                    self._send_to_lane(waiting)
            return
        stage = self._current_stage()
        if stage is None:
            return
        for prp_id in self.ctx.plan.plan.stages[stage - 1]:
            record = self.records.get(prp_id)
            if record is None or record.state.finished or prp_id in self.in_lane:
                continue
            if record.state is not PrpState.VALIDATED:
                return
            if prp_id in self.sent_to_lane:
                return
            self._send_to_lane(record)
            return

    def _send_to_lane(self, record: PrpRecord) -> None:
        assert record.head is not None
        self.in_lane.add(record.id)
        self.sent_to_lane.add(record.id)
        self.emit(PrpChanged(prp=record.id, state=PrpState.MERGING))
        prp = self.ctx.prp(record.id)
        self.lane_queue.put(
            MergeRequest(
                prp_id=record.id,
                title=prp.title,
                branch=record.info.branch,
                head=record.head,
                validation_env=self.lane_env,
            )
        )

    def _lane_loop(self) -> None:
        while True:
            request = self.lane_queue.get()
            if request is None:
                return
            if isinstance(request, _ReviewRequest):
                self.inbox.put(_Reviewed(review=self._safe_review(request.stage)))
                continue
            try:
                self.journal.intent("merge", prp=request.prp_id, head=request.head)
                result = self.lane.merge(request)
            except Exception as exc:
                result = MergeResult(
                    outcome=MergeOutcome.BLOCKED, message=f"{type(exc).__name__}: {exc}"
                )
            pushed = self._push(result) if result.outcome is MergeOutcome.MERGED else None
            self.inbox.put(_Merged(prp_id=request.prp_id, result=result, push_error=pushed))

    def _push(self, result: MergeResult) -> str | None:
        """After each merge (lane thread): the target to its upstream, when --push."""
        if self.push_to is None or result.tip is None:
            return None
        remote, branch = self.push_to
        self.journal.intent("push", remote=remote, branch=branch, commit=result.tip)
        return self.ctx.repo.push(remote, result.tip, branch)

    def _safe_review(self, stage: int) -> Review:
        try:
            return self._review(stage)
        except Exception as exc:  # a broken review must pause the batch, not kill the lane
            tip = self.ctx.repo.try_rev_parse(f"refs/heads/{self.ctx.target}") or ""
            return Review(stage=stage, passed=False, tip=tip, findings=(f"review failed: {exc}",))

    def _on_push_rejected(self, reason: str) -> None:
        assert self.push_to is not None
        remote, branch = self.push_to
        self.pause_reason = (
            f"Pushing {self.ctx.target} to {remote}/{branch} was rejected: {reason}\n"
            f"Merge {remote}/{branch} into {self.ctx.target} (`git pull --no-rebase`; do not "
            f"rebase merged work), then run `ce batch-exe {_batch_args(self.ctx)} --resume`."
        )
        self.emit(Notice(level="error", message=f"push to {remote}/{branch} rejected: {reason}"))

    def _on_merged(self, prp_id: str, result: MergeResult) -> None:
        self.in_lane.discard(prp_id)
        self.sent_to_lane.discard(prp_id)
        record = self.records[prp_id]
        if result.validation:
            record.validation.update({f"integration_{k}": v for k, v in result.validation.items()})
        if result.outcome is MergeOutcome.MERGED:
            record.merged_as = result.commit
            self._finish(record, PrpState.MERGED, None)
            self.removals.append(record)  # after the next dispatch: off the critical path
        elif result.outcome is MergeOutcome.CONFLICT:
            self._on_conflict(record, result)
        elif result.outcome is MergeOutcome.INVALID:
            self._finish(record, PrpState.PARTIAL, _integration_error(result))
            if not self.ctx.options.continue_on_error:
                self.stop_after_stage = True
        else:
            record.state = PrpState.VALIDATED
            self.pause_reason = result.message
            self.emit(Notice(level="error", prp=prp_id, message=result.message))

    def _on_conflict(self, record: PrpRecord, result: MergeResult) -> None:
        files = ", ".join(result.conflicts) or "(unknown files)"
        if self.ctx.config.conflict_policy == "rerun" and self._rerun(record, files):
            return
        if self.ctx.config.conflict_policy == "agent" and self._hand_to_agent(record, files):
            return
        if self.ctx.options.continue_on_error:
            self._finish(record, PrpState.CONFLICT, f"merge conflict in {files}")
            return
        record.error = f"merge conflict in {files}"
        self.emit(PrpChanged(prp=record.id, state=PrpState.CONFLICT, message=record.error))
        record.state = PrpState.CONFLICT
        worktree = record.info.worktree
        self.pause_reason = (
            f"{record.id} conflicts with {self.ctx.target} in: {files}.\n"
            f"Resolve it in its worktree, then resume:\n"
            f"  cd {worktree}\n"
            f"  git merge {self.ctx.target}      # fix the conflicts, then `git add` and "
            "`git commit`\n"
            f"  cd {self.ctx.root} && ce batch-exe {_batch_args(self.ctx)} --resume"
        )

    def _another_try(self, prp_id: str) -> int | None:
        """Count one more conflict-policy attempt for a PRP; None once MAX_RERUNS are used."""
        count = self.reruns.get(prp_id, 0) + 1
        if count > MAX_RERUNS:
            return None
        self.reruns[prp_id] = count
        return count

    def _hand_to_agent(self, record: PrpRecord, files: str) -> bool:
        """The `agent` policy: relaunch the PRP's executor in its worktree to merge the target
        into its branch and resolve; the lane then tries again. Bounded like `rerun`."""
        count = self._another_try(record.id)
        if count is None:
            return False
        self.resolving.add(record.id)
        self.emit(
            Notice(
                level="warning",
                prp=record.id,
                message=f"conflict in {files}: its executor merges {self.ctx.target} and "
                f"resolves (attempt {count} of {MAX_RERUNS})",
            )
        )
        self.emit(PrpChanged(prp=record.id, state=PrpState.PENDING, message="resolving"))
        return True

    def _rerun(self, record: PrpRecord, files: str) -> bool:
        """The `rerun` policy: execute the PRP again from the new target in a fresh worktree.

        The conflicting work is kept on a renamed branch, never deleted. Bounded: after
        MAX_RERUNS the usual pause (or --continue-on-error) applies.
        """
        count = self._another_try(record.id)
        if count is None:
            return False
        kept = f"{record.info.branch}-conflict-{count}"
        self.journal.intent("rerun", prp=record.id, kept=kept)
        self.ctx.repo.remove_worktree(Path(record.info.worktree), force=True)
        self.ctx.repo.rename_branch(record.info.branch, kept)
        self.journal.fact("rerun", prp=record.id, kept=kept)
        record.base = record.head = None
        record.phases_done = 0
        record.validation = {}
        self.emit(
            Notice(
                level="warning",
                prp=record.id,
                message=f"conflict in {files}: running it again from {self.ctx.target} "
                f"(its first attempt is kept on branch {kept})",
            )
        )
        self.emit(PrpChanged(prp=record.id, state=PrpState.PENDING, message="rerun"))
        return True

    # -- state and cleanup --------------------------------------------------------------------

    def _final_status(self) -> BatchStatus:
        if self.pause_reason:
            return BatchStatus.PAUSED
        if all(r.state is PrpState.MERGED for r in self.records.values()):
            return BatchStatus.COMPLETED
        return BatchStatus.FAILED

    def _interrupt(self) -> None:
        """Stop every agent's process group at once (SIGTERM, grace, SIGKILL)."""
        self.interrupted.set()
        self.gate.close()  # workers waiting for their turn to launch give up at once
        grace = self.ctx.config.monitor.grace_seconds
        stoppers = [
            threading.Thread(target=proc.kill_pgid, args=(worker.pgid, grace), daemon=True)
            for worker in list(self.running.values())
            if worker.pgid is not None
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def _ensure_ignored(self) -> None:
        if self.ctx.repo.is_ignored(f"{IGNORE_LINE}checkpoint.json"):
            return
        current = self.ctx.repo.read_blob(f"refs/heads/{self.ctx.target}", ".gitignore") or ""
        text = (
            current + ("" if not current or current.endswith("\n") else "\n") + IGNORE_LINE + "\n"
        )
        if not self.lane.commit_file(".gitignore", text, "ce: ignore .ce/tmp/"):
            self.emit(
                Notice(
                    level="warning",
                    message=f"could not add {IGNORE_LINE} to .gitignore; add it yourself",
                )
            )

    def _remove_worktree(self, record: PrpRecord) -> None:
        path = Path(record.info.worktree)
        if not path.exists():
            return
        self.journal.intent("remove-worktree", prp=record.id, path=str(path))
        try:
            self.ctx.repo.remove_worktree(path, force=True)
        except git.GitError as exc:
            self.emit(
                Notice(level="warning", prp=record.id, message=f"could not remove {path}: {exc}")
            )

    def _cleanup(self) -> None:
        merged = [r for r in self.records.values() if r.state is PrpState.MERGED]
        for record in merged:
            self._remove_worktree(record)
        branches = [r.info.branch for r in merged]  # one call; names already gone are fine
        if branches:
            self.journal.intent("delete-branches", branches=branches)
            self.ctx.repo.delete_branches(branches)
        if self.ctx.integration_worktree.exists():
            self.ctx.repo.remove_worktree(self.ctx.integration_worktree, force=True)
        self.ctx.repo.prune_worktrees()
        self.journal.fact("cleaned", merged=[r.id for r in merged])

    def _checkpoint(self, status: BatchStatus) -> None:
        with self.lock:
            data = self._checkpoint_data(status)
        write_json_atomic(self.ctx.state.checkpoint(self.ctx.batch_id), data)

    def _checkpoint_data(self, status: BatchStatus) -> dict[str, Any]:
        stages: dict[str, Any] = {}
        last_completed = 0
        current = None
        for number, ids in enumerate(self.ctx.plan.plan.stages, start=1):
            mine = [p for p in ids if p in self.records]
            done_before = [p for p in ids if p in self.ctx.done]
            states = [self.records[p].state for p in mine]
            if all(s is PrpState.MERGED for s in states):
                stage_status = "COMPLETED"
                if last_completed == number - 1:
                    last_completed = number
            elif any(s is not PrpState.PENDING for s in states):
                stage_status = "IN_PROGRESS" if not all(s.finished for s in states) else "FAILED"
                current = current or number
            else:
                stage_status = "PENDING"
            stages[str(number)] = {
                "status": stage_status,
                "prps": list(ids),
                "done_before": done_before,
                "results": {p: self.records[p].to_json() for p in mine},
            }
        return {
            "version": CHECKPOINT_VERSION,
            "batch_id": self.ctx.batch_id,
            "target": self.ctx.target,
            "executor": self.ctx.executor.name,
            "status": status.value,
            "pause_reason": self.pause_reason,
            "budget_reason": self.budget_reason,
            "last_stage_completed": last_completed,
            "current_stage": current,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "stages": stages,
            "reviews": {str(n): r.to_json() for n, r in sorted(self.reviews.items())},
            "hooks": self.hook_results,
        }

    def _outcome(self, status: BatchStatus) -> BatchOutcome:
        kept = tuple(
            r.info.worktree
            for r in self.records.values()
            if r.state is not PrpState.MERGED and Path(r.info.worktree).exists()
        )
        return BatchOutcome(
            batch_id=self.ctx.batch_id,
            status=status,
            records=tuple(self.records.values()),
            stages=self.ctx.plan.plan.stages,
            started_at=self.started_at,
            finished_at=time.time(),
            target=self.ctx.target,
            pause_reason=self.pause_reason,
            checkpoint=self.ctx.state.checkpoint(self.ctx.batch_id),
            warnings=self.ctx.warnings,
            kept_worktrees=kept,
            reviews=tuple(r.to_json() for _, r in sorted(self.reviews.items())),
            done_before=self.ctx.done - self.records.keys(),
            hooks=tuple(self.hook_results),
            budget_reason=self.budget_reason,
        )


def _sharing(conflicts: Mapping[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """PRP → the PRPs declaring a file that overlaps one of its own."""
    sharing: dict[str, set[str]] = {}
    for ids in conflicts.values():
        for prp_id in ids:
            sharing.setdefault(prp_id, set()).update(i for i in ids if i != prp_id)
    return sharing


def _exit_on_second_interrupt() -> None:
    """A second Ctrl-C (or SIGTERM) while stopping exits at once; --resume still works."""

    def now(signum: int, _frame: object) -> None:
        os._exit(130)

    signal.signal(signal.SIGINT, now)
    signal.signal(signal.SIGTERM, now)


def _integration_error(result: MergeResult) -> str:
    for key, level in sorted(result.validation.items()):
        if not level.passed:
            detail = level.errors[0] if level.errors else ""
            return f"the merged tree failed {key.replace('level_', 'L')}: {detail}"
    return "the merged tree failed validation"


def _batch_args(ctx: BatchContext) -> str:
    if ctx.options.batch:
        return f"--batch {ctx.options.batch}"
    return " ".join(ctx.options.prps)


def _append_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(mask(text))  # tracebacks and hooks' output may show a secret
