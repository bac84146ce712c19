"""One PRP's record: what the ledger knows of it. Only `run.ledger` changes a record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from ce.core.events import PrpInfo, PrpState


@dataclass(kw_only=True)
class LevelResult:
    passed: bool
    skipped: bool = False
    errors: list[str] = field(default_factory=list)
    ran_command: bool = False  # a command ran (it may have changed files); not saved
    command: str | None = None  # the check's command line, when one ran
    exit_code: int | None = None  # its exit code (None: it did not exit by itself)
    excerpt: list[str] = field(default_factory=list)  # its output's lines that matter

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "skipped": self.skipped,
            "errors": self.errors,
            "command": self.command,
            "exit_code": self.exit_code,
            "excerpt": self.excerpt,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LevelResult:
        code = data.get("exit_code")
        return cls(
            passed=bool(data.get("passed")),
            skipped=bool(data.get("skipped")),
            errors=[str(e) for e in data.get("errors", [])],
            command=None if data.get("command") is None else str(data["command"]),
            exit_code=code if isinstance(code, int) else None,
            excerpt=[str(line) for line in data.get("excerpt", [])],
        )


N = TypeVar("N", int, float)


def add_known(total: N | None, more: N | None) -> N | None:
    """A sum where None means "not reported": unknown only while nothing was."""
    if more is None:
        return total
    return more if total is None else total + more


# A PRP's duration is its own work: from its start until it is validated, and its own turn in the
# lane; not the time it waited for that turn behind other PRPs' merges (nor a pause).
OWN_TIME = frozenset({PrpState.PREPARING, PrpState.MERGING})  # the ledger starts a span
NOT_OWN_TIME = frozenset({PrpState.PENDING, PrpState.VALIDATED})  # ... and closes it


@dataclass(kw_only=True)
class Timing:
    """When a PRP ran. Its duration counts only its own work while a batch was running: a
    resume starts a new span, so the hours a batch sat interrupted are never counted, and the
    ledger closes the span while the PRP waits for its turn in the merge lane (the sum of the
    durations is the batch's sequential estimate)."""

    started_at: float | None = None  # its first start, wall clock (for display)
    finished_at: float | None = None
    active_seconds: float = 0.0  # spans already closed
    active_since: float | None = None  # the open span, while it is started and not finished

    def start(self, now: float) -> None:
        self.started_at = self.started_at or now
        self.finished_at = None
        if self.active_since is None:
            self.active_since = now

    def stop(self, now: float, *, finished: bool) -> None:
        if self.active_since is not None:
            self.active_seconds += max(0.0, now - self.active_since)
            self.active_since = None
        if finished:
            self.finished_at = now

    def duration(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        open_span = 0.0 if self.active_since is None else max(0.0, now - self.active_since)
        return self.active_seconds + open_span


@dataclass(kw_only=True)
class Usage:
    """What its agents reported spending, all runs together (None: never reported)."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None  # the agent's last session
    disk_bytes: int | None = None  # its worktree's size on disk after the executor

    def add(
        self,
        *,
        cost_usd: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
        session_id: str | None,
    ) -> None:
        self.cost_usd = add_known(self.cost_usd, cost_usd)
        self.input_tokens = add_known(self.input_tokens, input_tokens)
        self.output_tokens = add_known(self.output_tokens, output_tokens)
        self.session_id = session_id or self.session_id


@dataclass(kw_only=True)
class PolicyTries:
    """The conflict policy's tries on this PRP (`agent`, `rerun`): bounded; and the branches
    that keep its earlier attempts (`--retry-prp`)."""

    used: int = 0
    resolving: bool = False  # its next start resolves a conflict with the target (`agent`)
    kept: tuple[str, ...] = ()  # `<branch>-attempt-N`, oldest first


@dataclass(kw_only=True)
class PrpRecord:
    info: PrpInfo
    state: PrpState = PrpState.PENDING
    phases_done: int = 0
    attempts: int = 0
    base: str | None = None
    head: str | None = None
    merged_as: str | None = None
    error: str | None = None
    validation: dict[str, LevelResult] = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)
    usage: Usage = field(default_factory=Usage)
    policy: PolicyTries = field(default_factory=PolicyTries)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def cost_usd(self) -> float | None:
        return self.usage.cost_usd

    def to_json(self, now: float) -> dict[str, Any]:
        info, timing, usage = self.info, self.timing, self.usage
        duration = timing.duration(now)
        return {
            "prp_id": info.id,
            "title": info.title,
            "status": SEED_STATUS[self.state],
            "state": self.state.value,
            "model": info.model,
            "branch": info.branch,
            "worktree": info.worktree,
            "phases_total": info.phases,
            "phases_completed": [f"phase_{n}" for n in range(1, self.phases_done + 1)],
            "base": self.base,
            "head": self.head,
            "merged_as": self.merged_as,
            "attempts": self.attempts,
            "started_at": timing.started_at,
            "finished_at": timing.finished_at,
            "duration_seconds": None if duration is None else round(duration, 3),
            "validation_results": {k: v.to_json() for k, v in sorted(self.validation.items())},
            "cost_usd": usage.cost_usd,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "session_id": usage.session_id,
            "disk_bytes": usage.disk_bytes,
            "error": self.error,
            "kept_branches": list(self.policy.kept),
        }

    def load_json(self, data: dict[str, Any]) -> None:
        """What an earlier run saved; its open span closed where that run last wrote it."""
        self.state = PrpState(data.get("state", PrpState.PENDING.value))
        self.phases_done = len(data.get("phases_completed", []))
        self.base = data.get("base")
        self.head = data.get("head")
        self.merged_as = data.get("merged_as")
        self.attempts = int(data.get("attempts", 0))
        self.error = data.get("error")
        self.timing = Timing(
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            active_seconds=float(data.get("duration_seconds") or 0.0),
        )
        self.usage = Usage(
            cost_usd=data.get("cost_usd"),
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
            session_id=data.get("session_id"),
            disk_bytes=data.get("disk_bytes"),
        )
        self.validation = {
            k: LevelResult.from_json(v) for k, v in data.get("validation_results", {}).items()
        }
        self.policy = PolicyTries(kept=tuple(str(b) for b in data.get("kept_branches", [])))


SEED_STATUS = {
    PrpState.PENDING: "pending",
    PrpState.PREPARING: "in_progress",
    PrpState.RUNNING: "in_progress",
    PrpState.VALIDATING: "in_progress",
    PrpState.VALIDATED: "in_progress",
    PrpState.MERGING: "in_progress",
    PrpState.MERGED: "completed",
    PrpState.PARTIAL: "partial",
    PrpState.FAILED: "failed",
    PrpState.CONFLICT: "partial",
    PrpState.SKIPPED: "skipped",
}
