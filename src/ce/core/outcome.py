"""How a run ended, typed: the one summary the text summary, `--json`, the reports and the exit
code are all rendered from, and the one count of PRPs by outcome that the board shares.

`run.summary` builds a `Summary` once from the engine's outcome; `to_json()` is the `--json`
shape. Everything here is plain data: no git, no clock.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ce.core.events import PrpInfo, PrpState
from ce.core.excerpt import CHECKS_PER_PRP, LINES_PER_CHECK


class BatchStatus(enum.Enum):
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PAUSED = "PAUSED"
    INTERRUPTED = "INTERRUPTED"
    IN_PROGRESS = "IN_PROGRESS"

    @property
    def unfinished(self) -> bool:
        return self in (BatchStatus.IN_PROGRESS, BatchStatus.PAUSED, BatchStatus.INTERRUPTED)


class Bucket(enum.Enum):
    """Where a PRP counts in the totals: each state in exactly one bucket."""

    COMPLETED = "completed"  # merged
    PARTIAL = "partial"  # some phases done, then a failure
    CONFLICT = "conflict"  # its merge conflicts with the target (not partial)
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"  # validated, not merged yet (e.g. the target refused to fast-forward)
    IN_PROGRESS = "in_progress"  # started, not validated yet (an interrupted run)
    NOT_STARTED = "not_started"  # pending


BUCKET = {
    PrpState.PENDING: Bucket.NOT_STARTED,
    PrpState.PREPARING: Bucket.IN_PROGRESS,
    PrpState.RUNNING: Bucket.IN_PROGRESS,
    PrpState.VALIDATING: Bucket.IN_PROGRESS,
    PrpState.VALIDATED: Bucket.WAITING,
    PrpState.MERGING: Bucket.WAITING,
    PrpState.MERGED: Bucket.COMPLETED,
    PrpState.PARTIAL: Bucket.PARTIAL,
    PrpState.FAILED: Bucket.FAILED,
    PrpState.CONFLICT: Bucket.CONFLICT,
    PrpState.SKIPPED: Bucket.SKIPPED,
}


@dataclass(frozen=True, kw_only=True)
class Totals:
    """PRPs by bucket: the summary's and the board's counts, from this one function."""

    total: int = 0
    completed: int = 0
    partial: int = 0
    conflict: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: int = 0
    in_progress: int = 0
    not_started: int = 0

    @classmethod
    def of(cls, states: Iterable[PrpState]) -> Totals:
        buckets = [BUCKET[state] for state in states]
        counts = {bucket.value: buckets.count(bucket) for bucket in Bucket}
        return cls(total=len(buckets), **counts)

    def count(self, bucket: Bucket) -> int:
        return int(getattr(self, bucket.value))

    @property
    def failing(self) -> int:
        """Finished without merging through a failure: failed, partial or conflict."""
        return self.failed + self.partial + self.conflict

    @property
    def unfinished(self) -> int:
        return self.waiting + self.in_progress + self.not_started

    def to_json(self) -> dict[str, int]:
        return {
            "total": self.total,
            "completed": self.completed,
            "partial": self.partial,
            "failed": self.failed,
            "conflict": self.conflict,
            "skipped": self.skipped,
            "waiting": self.waiting,
            "in_progress": self.in_progress,
            "not_started": self.not_started,
        }


@dataclass(frozen=True, kw_only=True)
class Usage:
    """What the agents reported spending (None: none reported it)."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True, kw_only=True)
class PrpUsage(Usage):
    session_id: str | None = None  # the agent's last session
    disk_bytes: int | None = None  # its worktree's size on disk after the executor


@dataclass(frozen=True, kw_only=True)
class LevelOutcome:
    """One validation level's result; `key` is e.g. `level_3` or `integration_level_4`."""

    key: str
    passed: bool
    skipped: bool = False
    errors: tuple[str, ...] = ()
    command: str | None = None  # the check's command line, when one ran
    exit_code: int | None = None
    excerpt: tuple[str, ...] = ()  # the lines of its output that matter (`core.excerpt`)

    @property
    def name(self) -> str:
        return level_name(self.key)

    @property
    def failed(self) -> bool:
        return not self.passed and not self.skipped

    def why(self) -> tuple[str, ...]:
        """What the summary, JUnit and the page show of a failed check: what failed, then the
        lines that matter of its output (or its errors, when it ran no command), capped."""
        if self.excerpt:
            return (*self.errors[:1], *self.excerpt)
        return self.errors[: LINES_PER_CHECK + 1]

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "skipped": self.skipped,
            "errors": list(self.errors),
            "command": self.command,
            "exit_code": self.exit_code,
            "excerpt": list(self.excerpt),
        }


def level_name(key: str) -> str:
    return key.replace("integration_level_", "merged L").replace("level_", "L")


@dataclass(frozen=True, kw_only=True)
class Commits:
    base: str | None = None
    head: str | None = None
    merged_as: str | None = None


@dataclass(frozen=True, kw_only=True)
class Timing:
    started_at: float | None = None
    finished_at: float | None = None
    duration_seconds: float | None = None  # time the batch was running only


@dataclass(frozen=True, kw_only=True)
class PrpOutcome:
    info: PrpInfo
    state: PrpState
    status: str  # the seed's status word (completed, partial, in_progress…)
    phases_done: int = 0
    attempts: int = 0
    commits: Commits = Commits()
    timing: Timing = Timing()
    validation: tuple[LevelOutcome, ...] = ()  # sorted by key
    usage: PrpUsage = PrpUsage()
    error: str | None = None

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def bucket(self) -> Bucket:
        return BUCKET[self.state]

    @property
    def failed_checks(self) -> tuple[LevelOutcome, ...]:
        """The checks that failed, the first few (the rest are in the PRP's log)."""
        return tuple(level for level in self.validation if level.failed)[:CHECKS_PER_PRP]

    def to_json(self) -> dict[str, Any]:
        info, commits, timing, usage = self.info, self.commits, self.timing, self.usage
        return {
            "prp_id": info.id,
            "title": info.title,
            "status": self.status,
            "state": self.state.value,
            "model": info.model,
            "branch": info.branch,
            "worktree": info.worktree,
            "phases_total": info.phases,
            "phases_completed": [f"phase_{n}" for n in range(1, self.phases_done + 1)],
            "base": commits.base,
            "head": commits.head,
            "merged_as": commits.merged_as,
            "attempts": self.attempts,
            "started_at": timing.started_at,
            "finished_at": timing.finished_at,
            "duration_seconds": timing.duration_seconds,
            "validation_results": {level.key: level.to_json() for level in self.validation},
            "cost_usd": usage.cost_usd,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "session_id": usage.session_id,
            "disk_bytes": usage.disk_bytes,
            "error": self.error,
            "stage": info.stage,
        }


@dataclass(frozen=True, kw_only=True)
class StageEntry:
    id: str
    state: PrpState


@dataclass(frozen=True, kw_only=True)
class StageOutcome:
    stage: int
    prps: tuple[StageEntry, ...]  # the stage's PRPs in this run
    done_before: tuple[str, ...] = ()  # the stage's PRPs done before this run

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "prps": [{"id": p.id, "state": p.state.value} for p in self.prps],
            "done_before": list(self.done_before),
        }


@dataclass(frozen=True, kw_only=True)
class BatchTiming:
    elapsed_seconds: float = 0.0  # the time the batch ran, interruptions excluded
    sequential_seconds: float = 0.0  # the PRPs' durations added up
    time_saved_percent: float = 0.0

    @property
    def saved_seconds(self) -> float:
        return max(0.0, self.sequential_seconds - self.elapsed_seconds)


@dataclass(frozen=True, kw_only=True)
class Guidance:
    """Why the batch stopped and what to do next."""

    pause_reason: str | None = None
    budget_reason: str | None = None  # the batch budget stopped new PRPs from starting
    next_steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    kept_worktrees: tuple[str, ...] = ()
    kept_branches: tuple[str, ...] = ()  # earlier attempts set aside (-conflict-N, -attempt-N)


@dataclass(frozen=True, kw_only=True)
class ReportPaths:
    json: Path
    junit: Path
    html: Path

    @classmethod
    def of(cls, state_dir: Path, batch_id: str) -> ReportPaths:
        return cls(
            json=state_dir / f"batch-{batch_id}-report.json",
            junit=state_dir / f"batch-{batch_id}-junit.xml",
            html=state_dir / f"batch-{batch_id}-report.html",
        )

    def to_json(self) -> dict[str, str]:
        return {"json": str(self.json), "junit": str(self.junit), "html": str(self.html)}


@dataclass(frozen=True, kw_only=True)
class Checks:
    """The stage reviews and hooks that ran, as they saved themselves."""

    reviews: tuple[Mapping[str, Any], ...] = ()
    hooks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Summary:
    batch_id: str
    status: BatchStatus
    target: str
    totals: Totals
    usage: Usage = Usage()
    timing: BatchTiming = BatchTiming()
    stages: tuple[StageOutcome, ...] = ()
    prps: tuple[PrpOutcome, ...] = ()
    guidance: Guidance = Guidance()
    checkpoint: Path | None = None
    reports: ReportPaths | None = None  # set once they are written
    checks: Checks = Checks()

    @property
    def exit_code(self) -> int:
        return 0 if self.status is BatchStatus.COMPLETED else 1

    def prp(self, prp_id: str) -> PrpOutcome | None:
        return next((p for p in self.prps if p.id == prp_id), None)

    def to_json(self) -> dict[str, Any]:
        timing, guidance = self.timing, self.guidance
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "target": self.target,
            "totals": self.totals.to_json(),
            "usage": self.usage.to_json(),
            "elapsed_seconds": timing.elapsed_seconds,
            "sequential_seconds": timing.sequential_seconds,
            "time_saved_percent": timing.time_saved_percent,
            "stages": [stage.to_json() for stage in self.stages],
            "prps": {prp.id: prp.to_json() for prp in self.prps},
            "pause_reason": guidance.pause_reason,
            "budget_reason": guidance.budget_reason,
            "kept_worktrees": list(guidance.kept_worktrees),
            "kept_branches": list(guidance.kept_branches),
            "checkpoint": "" if self.checkpoint is None else str(self.checkpoint),
            "warnings": list(guidance.warnings),
            "reviews": [dict(review) for review in self.checks.reviews],
            "hooks": [dict(hook) for hook in self.checks.hooks],
            "next_steps": list(guidance.next_steps),
        }
        if self.reports is not None:
            data["reports"] = self.reports.to_json()
        return data
