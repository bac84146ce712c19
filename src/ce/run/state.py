"""Batch state: the seed's checkpoint (a readable summary) and the journal (exact resume)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from ce.core.errors import CeError
from ce.core.events import Health, PrpInfo, PrpState
from ce.secrets import mask_data

CHECKPOINT_VERSION = 1


def write_json_atomic(path: Path, data: object) -> None:
    """Temp file, fsync, rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # No indent: the C encoder is 10x faster, and the checkpoint is rewritten at every step.
    text = json.dumps(mask_data(data)) + "\n"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, kw_only=True)
class StateDir:
    """`.ce/tmp/` in the user's checkout: checkpoint, journal, logs, per-PRP scratch files."""

    root: Path

    @classmethod
    def of(cls, repo_root: Path) -> StateDir:
        return cls(root=repo_root / ".ce" / "tmp")

    def checkpoint(self, batch_id: str) -> Path:
        return self.root / f"batch-execution-{batch_id}.json"

    def journal(self, batch_id: str) -> Path:
        return self.root / f"batch-{batch_id}.journal.jsonl"

    def log(self, prp_id: str) -> Path:
        return self.root / "logs" / f"{prp_id}.log"

    def scratch(self, prp_id: str) -> Path:
        return self.root / "run" / prp_id


@dataclass(kw_only=True)
class LevelResult:
    passed: bool
    skipped: bool = False
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "skipped": self.skipped, "errors": self.errors}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LevelResult:
        return cls(
            passed=bool(data.get("passed")),
            skipped=bool(data.get("skipped")),
            errors=[str(e) for e in data.get("errors", [])],
        )


@dataclass(kw_only=True)
class PrpRecord:
    """The engine's mutable view of one PRP; owned by the orchestrator, guarded by its lock."""

    info: PrpInfo
    state: PrpState = PrpState.PENDING
    phases_done: int = 0
    base: str | None = None
    head: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    merged_as: str | None = None
    error: str | None = None
    validation: dict[str, LevelResult] = field(default_factory=dict)
    pgid: int | None = None
    health: Health = Health.HEALTHY
    last_progress: float | None = None
    cost_usd: float | None = None  # what its agents reported spending, all runs together
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None  # the agent's last session
    disk_bytes: int | None = None  # its worktree's size on disk after the executor

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def add_usage(
        self,
        *,
        cost_usd: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
        session_id: str | None,
    ) -> None:
        """What one more run of its executor spent: added up over runs (retries, resumes)."""
        self.cost_usd = add_known(self.cost_usd, cost_usd)
        self.input_tokens = add_known(self.input_tokens, input_tokens)
        self.output_tokens = add_known(self.output_tokens, output_tokens)
        self.session_id = session_id or self.session_id

    def to_json(self) -> dict[str, Any]:
        info = self.info
        return {
            "prp_id": info.id,
            "title": info.title,
            "status": _SEED_STATUS[self.state],
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
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
            "validation_results": {k: v.to_json() for k, v in sorted(self.validation.items())},
            "pgid": self.pgid,
            "cost_usd": self.cost_usd,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "session_id": self.session_id,
            "disk_bytes": self.disk_bytes,
            "error": self.error,
        }

    def load_json(self, data: dict[str, Any]) -> None:
        self.state = PrpState(data.get("state", PrpState.PENDING.value))
        self.phases_done = len(data.get("phases_completed", []))
        self.base = data.get("base")
        self.head = data.get("head")
        self.merged_as = data.get("merged_as")
        self.attempts = int(data.get("attempts", 0))
        self.started_at = data.get("started_at")
        self.finished_at = data.get("finished_at")
        self.error = data.get("error")
        self.pgid = data.get("pgid")
        self.cost_usd = data.get("cost_usd")
        self.input_tokens = data.get("input_tokens")
        self.output_tokens = data.get("output_tokens")
        self.session_id = data.get("session_id")
        self.disk_bytes = data.get("disk_bytes")
        self.validation = {
            k: LevelResult.from_json(v) for k, v in data.get("validation_results", {}).items()
        }


N = TypeVar("N", int, float)


def add_known(total: N | None, more: N | None) -> N | None:
    """A sum where None means "not reported": unknown only while nothing was."""
    if more is None:
        return total
    return more if total is None else total + more


_SEED_STATUS = {
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


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CeError(
            f"No checkpoint at {path}: there is nothing to resume. "
            "Run the batch without --resume to start it."
        ) from None
    except (OSError, ValueError) as exc:
        raise CeError(
            f"{path}: the checkpoint cannot be read ({exc}). Inspect it, or remove it with "
            "`ce cleanup` to start over."
        ) from None
    if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
        raise CeError(
            f"{path}: not a checkpoint this version of ce understands "
            f"(version {data.get('version') if isinstance(data, dict) else '?'}, "
            f"expected {CHECKPOINT_VERSION})."
        )
    return data


class Journal:
    """Append-only JSON lines, fsynced: an intent before each effect that matters, a fact after.

    `CE_TEST_KILL_AT` (an integer k) makes the process SIGKILL itself right after its k-th write:
    the fault-injection harness uses it to prove that resume is exact at every step.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: TextIO | None = (
            None  # opened on the first write: a refused run writes nothing
        )
        self._writes = 0
        kill_at = os.environ.get("CE_TEST_KILL_AT", "")
        self._kill_at = int(kill_at) if kill_at.isdigit() else None

    def intent(self, kind: str, **data: Any) -> None:
        self._write({"t": round(time.time(), 3), "intent": kind, **data})

    def fact(self, kind: str, **data: Any) -> None:
        self._write({"t": round(time.time(), 3), "fact": kind, **data})

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(mask_data(entry), sort_keys=True) + "\n"
        with self._lock:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._writes += 1
            if self._kill_at is not None and self._writes == self._kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return entries
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write: the effect it announced is re-checked
            if isinstance(entry, dict):
                entries.append(entry)
        return entries
