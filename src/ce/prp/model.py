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
class Prp:
    id: str  # normalized: exactly one "PRP-" prefix, safe characters only
    path: Path
    title: str
    status: str  # the normalized status word, e.g. "planning"
    status_class: StatusClass
    dependencies: tuple[str, ...] = ()  # normalized ids, in the order written, no duplicates
    ignored_dependencies: tuple[str, ...] = ()  # prose items that are not ids (warned about)
    stage_hint: int | None = None  # the declared stage; the planner decides
    estimated_hours: float | None = None
    files: tuple[str, ...] = ()  # repo-relative POSIX paths or globs, notes stripped
    batch_id: str | None = None
    order: int | None = None
    complexity: Complexity = Complexity.MEDIUM
    model: str | None = None  # the PRP's own `model:` (haiku|sonnet|opus)
    validation: Mapping[str, str] = field(default_factory=_frozen)  # e.g. {"level3": "pytest -q"}
    phases: tuple[Phase, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=_frozen)  # unknown frontmatter keys, kept
    warnings: tuple[str, ...] = ()  # non-fatal findings, each naming the file
    body: str = ""

    @property
    def phase_count(self) -> int:
        return len(self.phases)
