"""How a run ended, typed: what the summary, `--json`, the reports and the exit code render."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ce.core import names
from ce.core.events import PrpState
from ce.core.outcome import BatchStatus, Checks
from ce.run import checkpoint
from ce.run.ledger import Ledger, StageState
from ce.run.load import BatchContext
from ce.run.reasons import Reason
from ce.run.record import PrpRecord


@dataclass(frozen=True, kw_only=True)
class Kept:
    """Where the batch's state is, and what it kept for inspection."""

    checkpoint: Path
    worktrees: tuple[str, ...]
    branches: tuple[str, ...] = ()  # earlier attempts set aside: the rerun policy's, retries'


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """How a run ended, from the ledger: `run.summary` makes the typed Summary of it."""

    batch_id: str
    status: BatchStatus
    target: str
    records: tuple[PrpRecord, ...]
    stages: tuple[tuple[str, ...], ...]
    done_before: frozenset[str]  # PRPs of the plan done before this run
    finished_at: float
    elapsed_seconds: float  # the time the batch ran, over every run (interruptions excluded)
    reasons: tuple[str | None, str | None]  # (paused, budget spent), in words
    kept: Kept
    warnings: tuple[str, ...]
    checks: Checks  # the stage reviews and hooks


# While PRPs run the checkpoint is rewritten at most this often (for `ce status`): its cost
# follows the clock, not the events, and is not O(N) a step for a batch of N PRPs.
CHECKPOINT_SECONDS = 1.0


class Recorder:
    """Writes the checkpoint and builds the outcome, both from the ledger: one source, so the
    checkpoint, the summary and the reports always agree.

    The journal is the per-event record. The checkpoint, its summary, is written on disk
    (fsynced) when the run starts, when a stage ends and when the run ends; between those,
    at most once every CHECKPOINT_SECONDS and not fsynced (`changed`, `save_due`): a kill -9
    cannot lose it, and --resume reconciles every PRP with git whatever the checkpoint says.
    """

    def __init__(
        self,
        ctx: BatchContext,
        ledger: Ledger,
        describe: Callable[[Reason], str],
        started_at: float,
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.describe = describe
        self.started_at = started_at  # this run's start
        self._stale = False  # the ledger changed since the checkpoint was written
        self._saved: tuple[float, tuple[bool, ...]] = (-CHECKPOINT_SECONDS, ())
        self.elapsed_before = 0.0  # what earlier runs of this batch ran

    def reasons(self) -> tuple[str | None, str | None]:
        pause, budget = self.ledger.pause_reason(), self.ledger.budget_reason()
        return (
            None if pause is None else self.describe(pause),
            None if budget is None else self.describe(budget),
        )

    def elapsed(self, now: float) -> float:
        return self.elapsed_before + max(0.0, now - self.started_at)

    def changed(self, changed: bool = True) -> None:
        """After a step of the run: when something `ce status` shows `changed`, the checkpoint
        is written at once if a stage moved on (fsynced), else within CHECKPOINT_SECONDS."""
        self._stale = self._stale or changed
        if changed and self._stages() != self._saved[1]:
            self.checkpoint(BatchStatus.IN_PROGRESS)
        else:
            self.save_due()

    def save_due(self) -> None:
        if self._stale and time.monotonic() - self._saved[0] >= CHECKPOINT_SECONDS:
            self.checkpoint(BatchStatus.IN_PROGRESS, durable=False)

    def _stages(self) -> tuple[bool, ...]:
        """Which stages are done (reviewed, if they are reviewed)."""
        count = len(self.ctx.plan.plan.stages)
        return tuple(self.ledger.stage_state(n) is StageState.DONE for n in range(1, count + 1))

    def checkpoint(self, status: BatchStatus, *, durable: bool = True) -> None:
        ctx, ledger, now = self.ctx, self.ledger, self.ledger.clock()
        self._stale, self._saved = False, (time.monotonic(), self._stages())
        with ledger.lock:
            saved = checkpoint.build(
                batch_id=ctx.batch_id,
                target=ctx.target,
                executor=ctx.executor.name,
                status=status,
                stages=ctx.plan.plan.stages,
                records={r.id: r for r in ledger.records()},
                done=ctx.done,
                reasons=self.reasons(),
                started_at=self.started_at,
                elapsed_seconds=self.elapsed(now),
                reviews={str(r.stage): r.to_json() for r in ledger.reviews()},
                hooks=[h.to_json() for h in ledger.hooks()],
                now=now,
            )
        saved.write(ctx.state.checkpoint(ctx.batch_id), durable=durable)

    def outcome(self, status: BatchStatus) -> BatchOutcome:
        ctx, ledger = self.ctx, self.ledger
        records, now = ledger.records(), ledger.clock()
        pause, budget = self.reasons()
        return BatchOutcome(
            batch_id=ctx.batch_id,
            status=status,
            target=ctx.target,
            records=tuple(records),
            stages=ctx.plan.plan.stages,
            done_before=ctx.done - set(ledger.ids()),
            finished_at=now,
            elapsed_seconds=self.elapsed(now),
            reasons=(pause, budget),
            kept=Kept(
                checkpoint=ctx.state.checkpoint(ctx.batch_id),
                worktrees=tuple(
                    r.info.worktree
                    for r in records
                    if r.state is not PrpState.MERGED and Path(r.info.worktree).exists()
                ),
                branches=_kept_branches(ctx, records),
            ),
            warnings=ctx.warnings,
            checks=Checks(
                reviews=tuple(r.to_json() for r in ledger.reviews()),
                hooks=tuple(h.to_json() for h in ledger.hooks()),
            ),
        )


def _kept_branches(ctx: BatchContext, records: list[PrpRecord]) -> tuple[str, ...]:
    """The attempts the rerun policy set aside, in this run or an earlier one (one git call),
    then those retries kept (`--retry-prp`), as the records name them."""
    tips = ctx.repo.ref_tips([names.conflict_branches(r.info.branch) for r in records])
    conflicts = sorted(ref.removeprefix("refs/heads/") for ref in tips)
    return tuple(dict.fromkeys([*conflicts, *(b for r in records for b in r.policy.kept)]))
