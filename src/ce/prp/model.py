"""The typed, immutable PRP record every other layer reads."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any


class StatusClass(enum.Enum):
    READY = "ready"  # planning, pending, new, initial, ready
    DONE = "done"  # completed, executed, validated: skipped, and they satisfy dependencies
    NOT_RUNNABLE = "not-runnable"  # draft, rejected, archived


_MEANING = {
    StatusClass.READY: "not done yet",
    StatusClass.DONE: "done",
    StatusClass.NOT_RUNNABLE: "not to be run",
}


def status_words(prp: Prp) -> str:
    """`'pending' (not done yet)`: the word the PRP file holds and what ce reads in it."""
    return f"'{prp.status}' ({_MEANING[prp.status_class]})"


class Complexity(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, kw_only=True, slots=True)
class Phase:
    number: int
    title: str
    # Bodies of the ```sh run / ```bash run fences of this phase, in order.
    blocks: tuple[str, ...] = ()


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanHints:
    """What a PRP tells the planner beyond its graph: sizing, ordering and the model to use."""

    stage: int | None = None  # the declared stage; the planner decides
    estimated_hours: float | None = None
    order: int | None = None
    complexity: Complexity = Complexity.MEDIUM
    model: str | None = None  # the PRP's own `model:` (haiku|sonnet|opus)
    batch_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Findings:
    """What the parser noticed and set aside: `ce lint` lists it, the planner warns."""

    warnings: tuple[str, ...] = ()  # non-fatal findings, each naming the file
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # unknown frontmatter keys, kept
    ignored_dependencies: tuple[str, ...] = ()  # prose items that are not ids (warned about)


@dataclass(frozen=True, kw_only=True, slots=True)
class Prp:
    id: str  # normalized: exactly one "PRP-" prefix, safe characters only
    path: Path
    title: str
    status: str  # the normalized status word, e.g. "planning"
    status_class: StatusClass
    dependencies: tuple[str, ...] = ()  # normalized ids, in the order written, no duplicates
    files: tuple[str, ...] = ()  # repo-relative POSIX paths or globs, notes stripped
    hints: PlanHints = PlanHints()
    validation: Mapping[str, str] = field(default_factory=_frozen)  # e.g. {"level3": "pytest -q"}
    phases: tuple[Phase, ...] = ()
    findings: Findings = Findings()
    body: str = ""

    @property
    def phase_count(self) -> int:
        return len(self.phases)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.findings.warnings

    @property
    def extra(self) -> Mapping[str, Any]:
        return self.findings.extra

    @property
    def ignored_dependencies(self) -> tuple[str, ...]:
        return self.findings.ignored_dependencies

    @property
    def stage_hint(self) -> int | None:
        return self.hints.stage

    @property
    def estimated_hours(self) -> float | None:
        return self.hints.estimated_hours

    @property
    def order(self) -> int | None:
        return self.hints.order

    @property
    def complexity(self) -> Complexity:
        return self.hints.complexity

    @property
    def model(self) -> str | None:
        return self.hints.model

    @property
    def batch_id(self) -> str | None:
        return self.hints.batch_id
