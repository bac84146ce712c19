"""The run's summary as data: what `--json` prints, what the summary and reports render."""

from __future__ import annotations

from typing import Any

from ce.core.events import PrpState
from ce.core.outcome import BatchStatus
from ce.run.outcome import BatchOutcome
from ce.run.record import PrpRecord, add_known


def build_summary(outcome: BatchOutcome, *, resume_command: str) -> dict[str, Any]:
    records = outcome.records
    sequential = sum(r.timing.duration(outcome.finished_at) or 0.0 for r in records)
    elapsed = outcome.elapsed_seconds
    saved = 100.0 * (1 - elapsed / sequential) if sequential > elapsed > 0 else 0.0
    return {
        "batch_id": outcome.batch_id,
        "status": outcome.status.value,
        "exit_code": outcome.exit_code,
        "target": outcome.target,
        "totals": _totals(records),
        "usage": _usage(records),
        "elapsed_seconds": round(elapsed, 3),
        "sequential_seconds": round(sequential, 3),
        "time_saved_percent": round(saved, 1),
        "stages": [
            {
                "stage": number,
                "prps": [
                    {"id": r.id, "state": r.state.value} for r in records if r.info.stage == number
                ],
                "done_before": [p for p in outcome.stages[number - 1] if p in outcome.done_before],
            }
            for number in range(1, len(outcome.stages) + 1)
        ],
        "prps": {r.id: _prp(r, outcome.finished_at) for r in records},
        "pause_reason": outcome.pause_reason,
        "budget_reason": outcome.budget_reason,
        "kept_worktrees": list(outcome.kept_worktrees),
        "checkpoint": str(outcome.checkpoint),
        "warnings": list(outcome.warnings),
        "reviews": list(outcome.reviews),
        "hooks": list(outcome.hooks),
        "next_steps": _next_steps(outcome, resume_command),
    }


def _totals(records: tuple[PrpRecord, ...]) -> dict[str, int]:
    def count(*states: PrpState) -> int:
        return sum(1 for r in records if r.state in states)

    return {
        "total": len(records),
        "completed": count(PrpState.MERGED),
        "partial": count(PrpState.PARTIAL),
        "failed": count(PrpState.FAILED),
        "conflict": count(PrpState.CONFLICT),
        "skipped": count(PrpState.SKIPPED),
        "not_started": sum(1 for r in records if not r.state.finished),
    }


def _usage(records: tuple[PrpRecord, ...]) -> dict[str, Any]:
    """The batch's total of what the agents reported (None: none reported it)."""
    cost: float | None = None
    inputs: int | None = None
    outputs: int | None = None
    for record in records:
        cost = add_known(cost, record.cost_usd)
        inputs = add_known(inputs, record.usage.input_tokens)
        outputs = add_known(outputs, record.usage.output_tokens)
    return {
        "cost_usd": None if cost is None else round(cost, 6),
        "input_tokens": inputs,
        "output_tokens": outputs,
    }


def _prp(record: PrpRecord, now: float) -> dict[str, Any]:
    data = record.to_json(now)
    data["stage"] = record.info.stage
    return data


def _next_steps(outcome: BatchOutcome, resume_command: str) -> list[str]:
    steps: list[str] = []
    if outcome.status is BatchStatus.COMPLETED:
        steps.append(f"Review the merged work: git log --oneline --first-parent {outcome.target}")
        return steps
    if outcome.pause_reason:
        steps.append(outcome.pause_reason)
    if outcome.budget_reason:
        steps.append(outcome.budget_reason)
    for record in outcome.records:
        if record.state in (PrpState.PARTIAL, PrpState.FAILED) and record.error:
            steps.append(f"Fix {record.id} ({record.error}); its work is in {record.info.worktree}")
    steps.append(f"Continue the batch: {resume_command}")
    return steps
