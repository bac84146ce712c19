"""Auto-review after each stage: `ce`'s own gates over what the stage merged.

The target's tree after the stage goes through the validation levels (conflict markers,
syntax, tests, integration command) in the integration worktree, and every PRP the stage merged
is checked again for drift against its declared files. FAILED pauses the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ce import git
from ce.config import ValidateConfig
from ce.prp.model import Prp
from ce.run.merge import checkout_integration
from ce.run.validate import ValidationTarget, drift, run_command, run_levels


@dataclass(frozen=True, kw_only=True)
class MergedPrp:
    prp: Prp
    merge: str  # its merge commit on the target
    relpath: str | None  # its PRP file, left out of drift


@dataclass(frozen=True, kw_only=True)
class Review:
    stage: int
    passed: bool
    tip: str
    findings: tuple[str, ...] = ()
    levels: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": "PASSED" if self.passed else "FAILED",
            "tip": self.tip,
            "findings": list(self.findings),
            "levels": self.levels,
        }


def review_stage(
    *,
    checkout: git.Repo,
    integration: Path,
    stage: int,
    base: str,
    tip: str,
    merged: Sequence[MergedPrp],
    config: ValidateConfig,
    env: Mapping[str, str] | None = None,
    on_created: Callable[[Path], None] | None = None,
) -> Review:
    """Review the target from `base` (before the stage's first merge) to `tip`."""
    findings = [*_drift_findings(checkout, merged, config.drift_threshold)]
    checkout_integration(checkout, integration, tip, on_created)
    target = ValidationTarget(worktree=integration, base=base, head=tip, branch_checks=False)
    results = run_levels(target, config, (1, 2, 3, 4), env)
    if config.review.strip() and all(r.passed for r in results.values()):
        results["review"] = run_command(config.review, target, config, env)
    for key, result in sorted(results.items()):
        if not result.passed:
            detail = "; ".join(result.errors[:3])
            findings.append(f"the target after stage {stage} fails {_level(key)}: {detail}")
    return Review(
        stage=stage,
        passed=not findings,
        tip=tip,
        findings=tuple(findings),
        levels={key: result.to_json() for key, result in sorted(results.items())},
    )


def _drift_findings(checkout: git.Repo, merged: Sequence[MergedPrp], threshold: float) -> list[str]:
    findings = []
    for item in merged:
        if not item.prp.files:
            continue
        changed = [
            name
            for name in checkout.changed_files(f"{item.merge}^1", item.merge)
            if name != item.relpath
        ]
        share, outside = drift(changed, item.prp.files)
        if share >= threshold:
            findings.append(
                f"{item.prp.id} changed {share:.0f}% of its files outside its declared ones: "
                + ", ".join(outside[:10])
            )
    return findings


def _level(key: str) -> str:
    return key.replace("level_", "L")
