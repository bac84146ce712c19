"""What `--dry-run` shows before a night's run: the plan of what will run, who runs it, the
checks each PRP's work must pass, and what would stop a real run from starting. Plain data:
`run.readiness` finds it out, `ui.plan_view` renders it, `to_json()` is `--dry-run --json`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ce.plan.batch import BatchPlan


@dataclass(frozen=True, kw_only=True)
class PlannedCheck:
    """One validation level as it will run on a PRP's work."""

    level: int
    command: str | None = None  # the command line it runs (None: none)
    builtin: str = ""  # what ce checks by itself at this level ("": nothing)
    source: str = "config"  # where the command comes from: config, detected, the PRP

    @property
    def runs(self) -> bool:
        return self.command is not None or bool(self.builtin)

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "builtin": self.builtin or None, "source": self.source}


@dataclass(frozen=True, kw_only=True)
class DryRun:
    plan: BatchPlan
    batch_id: str | None
    stage: int | None = None  # --stage N
    executor: str = ""
    checks: Mapping[str, tuple[PlannedCheck, ...]] = field(default_factory=dict)  # per PRP
    problems: tuple[str, ...] = ()  # each would stop a real run before it changes anything

    @property
    def exit_code(self) -> int:
        """What a real run would exit with before doing anything: 2 when it would refuse."""
        return 2 if self.problems else 0

    def to_json(self) -> dict[str, Any]:
        data = self.plan.dry_run_json(self.batch_id, self.stage)
        for prp_id, checks in self.checks.items():
            data["prps"][prp_id]["validation"] = {
                f"level_{check.level}": check.to_json() for check in checks if check.runs
            }
        return {
            **data,
            "executor": self.executor,
            "readiness": {"ready": not self.problems, "problems": list(self.problems)},
            "exit_code": self.exit_code,
        }
