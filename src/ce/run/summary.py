"""The run's summary, typed and built once from the outcome: what `--json` prints and what the
text summary, the reports and the exit code render. Counts are computed here, once."""

from __future__ import annotations

from ce.core.events import PrpState, StopKind
from ce.core.outcome import (
    BatchStatus,
    BatchTiming,
    Commits,
    Guidance,
    LevelOutcome,
    PrpOutcome,
    PrpUsage,
    StageEntry,
    StageOutcome,
    Summary,
    Timing,
    Totals,
    Usage,
)
from ce.run.outcome import BatchOutcome
from ce.run.record import SEED_STATUS, PrpRecord, add_known


def build_summary(outcome: BatchOutcome, *, resume_command: str) -> Summary:
    records = outcome.records
    return Summary(
        batch_id=outcome.batch_id,
        status=outcome.status,
        target=outcome.target,
        totals=Totals.of(r.state for r in records),
        usage=_usage(records),
        timing=_timing(outcome),
        stages=_stages(outcome),
        prps=tuple(_prp(r, outcome.finished_at) for r in records),
        guidance=Guidance(
            pause_reason=outcome.reasons[0],
            budget_reason=outcome.reasons[1],
            next_steps=tuple(_next_steps(outcome, resume_command)),
            warnings=outcome.warnings,
            kept_worktrees=outcome.kept.worktrees,
            kept_branches=outcome.kept.branches,
        ),
        checkpoint=outcome.kept.checkpoint,
        checks=outcome.checks,
    )


def _timing(outcome: BatchOutcome) -> BatchTiming:
    sequential = sum(r.timing.duration(outcome.finished_at) or 0.0 for r in outcome.records)
    elapsed = outcome.elapsed_seconds
    saved = 100.0 * (1 - elapsed / sequential) if sequential > elapsed > 0 else 0.0
    return BatchTiming(
        elapsed_seconds=round(elapsed, 3),
        sequential_seconds=round(sequential, 3),
        time_saved_percent=round(saved, 1),
    )


def _stages(outcome: BatchOutcome) -> tuple[StageOutcome, ...]:
    return tuple(
        StageOutcome(
            stage=number,
            prps=tuple(
                StageEntry(id=r.id, state=r.state)
                for r in outcome.records
                if r.info.stage == number
            ),
            done_before=tuple(p for p in ids if p in outcome.done_before),
        )
        for number, ids in enumerate(outcome.stages, start=1)
    )


def _usage(records: tuple[PrpRecord, ...]) -> Usage:
    """The batch's total of what the agents reported (None: none reported it)."""
    cost: float | None = None
    inputs: int | None = None
    outputs: int | None = None
    for record in records:
        cost = add_known(cost, record.cost_usd)
        inputs = add_known(inputs, record.usage.input_tokens)
        outputs = add_known(outputs, record.usage.output_tokens)
    return Usage(
        cost_usd=None if cost is None else round(cost, 6),
        input_tokens=inputs,
        output_tokens=outputs,
    )


def _prp(record: PrpRecord, now: float) -> PrpOutcome:
    timing, usage = record.timing, record.usage
    duration = timing.duration(now)
    return PrpOutcome(
        info=record.info,
        state=record.state,
        status=SEED_STATUS[record.state],
        phases_done=record.phases_done,
        attempts=record.attempts,
        commits=Commits(base=record.base, head=record.head, merged_as=record.merged_as),
        timing=Timing(
            started_at=timing.started_at,
            finished_at=timing.finished_at,
            duration_seconds=None if duration is None else round(duration, 3),
        ),
        validation=tuple(
            LevelOutcome(
                key=key,
                passed=v.passed,
                skipped=v.skipped,
                errors=tuple(v.errors),
                command=v.command,
                exit_code=v.exit_code,
                excerpt=tuple(v.excerpt),
            )
            for key, v in sorted(record.validation.items())
        ),
        usage=PrpUsage(
            cost_usd=usage.cost_usd,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            session_id=usage.session_id,
            disk_bytes=usage.disk_bytes,
        ),
        error=record.error,
    )


def _next_steps(outcome: BatchOutcome, resume_command: str) -> list[str]:
    steps: list[str] = []
    if outcome.status is BatchStatus.COMPLETED:
        steps.append(f"Review the merged work: git log --oneline --first-parent {outcome.target}")
        return steps
    steps += [reason for reason in outcome.reasons if reason]
    for record in outcome.records:
        if record.state in (PrpState.PARTIAL, PrpState.FAILED) and record.error:
            steps.append(_fix(record, resume_command))
    steps.append(f"Continue the batch: {resume_command}")
    return steps


def _fix(record: PrpRecord, resume_command: str) -> str:
    where = f"its work is in {record.info.worktree}"
    if record.error and record.error.startswith(f"{StopKind.TIMED_OUT.value} after"):
        return (
            f"{record.id} {record.error}: give it more time with `{resume_command} --timeout N` "
            f"(N minutes for it; {where})"
        )
    retry = f"{resume_command.removesuffix(' --resume')} --retry-prp {record.id}"
    return (
        f"Fix {record.id} ({record.error}); {where}: commit your fix there and --resume "
        f"validates and merges it, or run it again from the target with `{retry}`"
    )
