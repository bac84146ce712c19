"""The checkpoint file `.ce/tmp/batch-execution-<id>.json`: the seed's schema plus `version`.

`Checkpoint` is its only reader and writer: the engine, `--resume`, `ce status` and
`ce cleanup` all go through it. Reading validates the whole file, so a damaged or foreign one
is a clear error naming the file, never a KeyError later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ce.core.errors import CeError
from ce.core.events import PrpState
from ce.core.outcome import BatchStatus
from ce.fsio import write_atomic
from ce.run.record import PrpRecord
from ce.run.state import Journal, StateDir
from ce.secrets import masked_json

CHECKPOINT_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SavedPrp(_Model):
    """One PRP's record as saved (`PrpRecord.to_json`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    prp_id: str
    state: PrpState = PrpState.PENDING
    branch: str
    worktree: str
    title: str = ""
    phases_total: int = 0
    phases_completed: list[str] = Field(default_factory=list)
    base: str | None = None
    head: str | None = None
    merged_as: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SavedStage(_Model):
    status: str
    prps: list[str]
    done_before: list[str] = Field(default_factory=list)
    results: dict[str, SavedPrp] = Field(default_factory=dict)


class SavedTimes(_Model):
    started_at: float | None = None  # the batch's first start
    updated_at: float | None = None  # this checkpoint's writing
    elapsed_seconds: float = 0.0  # time the batch ran, over every run (interruptions excluded)


class SavedChecks(_Model):
    reviews: dict[str, dict[str, Any]] = Field(default_factory=dict)  # by stage
    hooks: list[dict[str, Any]] = Field(default_factory=list)


_GROUPS: dict[str, type[_Model]] = {"times": SavedTimes, "checks": SavedChecks}


class Checkpoint(_Model):
    """The seed's keys (`version`, `batch_id`, `status`, `last_stage_completed`,
    `current_stage`, `stages`) at the top level, ce's own times and checks grouped."""

    version: int
    batch_id: str
    status: BatchStatus
    target: str = ""
    executor: str = ""
    pause_reason: str | None = None
    budget_reason: str | None = None
    last_stage_completed: int = 0
    current_stage: int | None = None
    stages: dict[str, SavedStage] = Field(default_factory=dict)
    times: SavedTimes = Field(default_factory=SavedTimes)
    checks: SavedChecks = Field(default_factory=SavedChecks)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """A checkpoint written before the times and checks were grouped keeps them at the
        top level: read them from there."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for group, model in _GROUPS.items():
            flat = {key: data.pop(key) for key in model.model_fields if key in data}
            if flat and group not in data:
                data[group] = flat
        return data

    def results(self) -> dict[str, SavedPrp]:
        """Every PRP's saved record, in stage order."""
        found: dict[str, SavedPrp] = {}
        for number in sorted(self.stages, key=int):
            found.update(self.stages[number].results)
        return found

    def failed_reviews(self) -> list[int]:
        reviews = self.checks.reviews
        return sorted(int(n) for n, r in reviews.items() if r.get("status") == "FAILED")

    def write(self, path: Path, *, durable: bool = True) -> None:
        write_atomic(path, masked_json(self.model_dump(mode="json")), durable=durable)

    @classmethod
    def read(cls, path: Path) -> Checkpoint:
        """The checkpoint at `path`; `CheckpointLost` when it is missing or damaged."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointLost(
                f"No checkpoint at {path}: there is nothing to resume. "
                "Run the batch without --resume to start it.",
                missing=True,
            ) from None
        except (OSError, ValueError) as exc:
            raise CheckpointLost(f"{path}: the checkpoint cannot be read ({exc}).") from None
        version = data.get("version") if isinstance(data, dict) else "?"
        if version != CHECKPOINT_VERSION:
            raise CeError(
                f"{path}: not a checkpoint this version of ce understands "
                f"(version {version}, expected {CHECKPOINT_VERSION})."
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise CheckpointLost(
                f"{path}: the checkpoint is damaged ({where}: {first['msg']})."
            ) from None


class CheckpointLost(CeError):
    """The checkpoint is missing, or damaged (truncated, unparsable): `--resume` rebuilds it
    from the journal and git (`run.selection.rebuilt`)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def build(
    *,
    batch_id: str,
    target: str,
    executor: str,
    status: BatchStatus,
    stages: tuple[tuple[str, ...], ...],
    records: Mapping[str, PrpRecord],
    done: frozenset[str],
    reasons: tuple[str | None, str | None],  # (pause, budget), in words
    started_at: float,
    elapsed_seconds: float,
    reviews: dict[str, dict[str, Any]],
    hooks: list[dict[str, Any]],
    now: float,
) -> Checkpoint:
    """The checkpoint of a batch at `now`, from its records."""
    saved: dict[str, SavedStage] = {}
    last_completed = 0
    current = None
    for number, ids in enumerate(stages, start=1):
        mine = [p for p in ids if p in records]
        states = [records[p].state for p in mine]
        if all(s is PrpState.MERGED for s in states):
            stage_status = "COMPLETED"
            if last_completed == number - 1:
                last_completed = number
        elif any(s is not PrpState.PENDING for s in states):
            stage_status = "IN_PROGRESS" if not all(s.finished for s in states) else "FAILED"
            current = current or number
        else:
            stage_status = "PENDING"
        saved[str(number)] = SavedStage(
            status=stage_status,
            prps=list(ids),
            done_before=[p for p in ids if p in done],
            results={p: SavedPrp.model_validate(records[p].to_json(now)) for p in mine},
        )
    return Checkpoint(
        version=CHECKPOINT_VERSION,
        batch_id=batch_id,
        target=target,
        executor=executor,
        status=status,
        pause_reason=reasons[0],
        budget_reason=reasons[1],
        last_stage_completed=last_completed,
        current_stage=current,
        stages=saved,
        times=SavedTimes(
            started_at=started_at, updated_at=now, elapsed_seconds=round(elapsed_seconds, 3)
        ),
        checks=SavedChecks(reviews=reviews, hooks=hooks),
    )


@dataclass(frozen=True, kw_only=True)
class Names:
    """A PRP's branch and worktree, as a run made (or was to make) them."""

    branch: str
    worktree: str


def recorded_names(state: StateDir, batch_id: str) -> dict[str, Names]:
    """Each PRP's names as the batch recorded them: the checkpoint's, and over them the
    journal's (written before each worktree is made, so it knows one the checkpoint missed)."""
    names: dict[str, Names] = {}
    try:
        saved = Checkpoint.read(state.checkpoint(batch_id)).results()
    except CeError:
        saved = {}  # missing or damaged: the journal still says what was made
    for prp_id, prp in saved.items():
        names[prp_id] = Names(branch=prp.branch, worktree=prp.worktree)
    for entry in Journal.read(state.journal(batch_id)):
        if entry.get("intent") == "worktree" and entry.get("branch") and entry.get("path"):
            names[str(entry["prp"])] = Names(
                branch=str(entry["branch"]), worktree=str(entry["path"])
            )
    return names


def journal_target(state: StateDir, batch_id: str) -> str | None:
    """The target the batch's first run recorded in its journal (when its checkpoint is lost)."""
    for entry in Journal.read(state.journal(batch_id)):
        if entry.get("fact") == "start" and entry.get("target"):
            return str(entry["target"])
    return None
