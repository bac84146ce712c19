"""Auto-review after each stage: `ce`'s own gates over what the stage merged.

The target's tree after the stage goes through the validation levels (conflict markers,
syntax, tests, integration command) in the integration worktree, and every PRP the stage merged
is checked again for drift against its declared files. FAILED pauses the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ce import git
from ce.config import ValidateConfig
from ce.core.events import Listener, Notice, NoticeLevel
from ce.prp.model import Prp
from ce.run import worktree_env
from ce.run.agent_review import agent_review
from ce.run.integration import prepare_integration
from ce.run.load import BatchContext
from ce.run.merge import checkout_integration
from ce.run.record import LevelResult, PrpRecord
from ce.run.validate import ValidationTarget, drift, run_command, run_levels, tree_checks


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
    """Review the target from `base` (before the stage's first merge) to `tip`.

    The merged tree is checked out only when a gate can find something in it that each PRP's
    own gates did not: a command to run, or the built-in syntax check (`level2` unset)."""
    findings = [*_drift_findings(checkout, base, tip, merged, config.drift_threshold)]
    results: dict[str, LevelResult] = {}
    if config.review.strip() or tree_checks(config, checkout.path, levels=(1, 2, 3, 4)):
        checkout_integration(checkout, integration, tip, on_created)
        target = ValidationTarget(worktree=integration, base=base, head=tip, branch_checks=False)
        with worktree_env.committed_only_in_lane(integration):
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


def _drift_findings(
    checkout: git.Repo, base: str, tip: str, merged: Sequence[MergedPrp], threshold: float
) -> list[str]:
    findings: list[str] = []
    if not any(item.prp.files for item in merged):
        return findings
    brought = checkout.first_parent_changes(base, tip)  # every merge's files, one git call
    for item in merged:
        if not item.prp.files:
            continue
        if item.merge not in brought:  # not on the first-parent line: ask git about it alone
            brought[item.merge] = checkout.changed_files(f"{item.merge}^1", item.merge)
        changed = [name for name in brought[item.merge] if name != item.relpath]
        share, outside = drift(changed, item.prp.files)
        if share >= threshold:
            findings.append(
                f"{item.prp.id} changed {share:.0f}% of its files outside its declared ones: "
                + ", ".join(outside[:10])
            )
    return findings


def _level(key: str) -> str:
    return key.replace("level_", "L")


@dataclass(frozen=True, kw_only=True)
class StageMerges:
    """What one stage merged, in merge order."""

    stage: int
    merged: tuple[MergedPrp, ...]


def stage_merges(ctx: BatchContext, records: Sequence[PrpRecord], stage: int) -> StageMerges:
    """What the stage merged, in merge order: the review starts before the first one."""
    ids = set(ctx.plan.plan.stages[stage - 1])
    merged = sorted(
        (r for r in records if r.id in ids and r.merged_as),
        key=lambda r: r.timing.finished_at or 0.0,
    )
    return StageMerges(
        stage=stage,
        merged=tuple(
            MergedPrp(
                prp=ctx.prp(r.id), merge=r.merged_as or "", relpath=ctx.relpath(ctx.prp(r.id))
            )
            for r in merged
        ),
    )


class StageReviewer:
    """After each stage (in the lane thread, so the target holds still): ce's gates over the
    target from before the stage's first merge to its tip, then the optional agent review."""

    def __init__(self, ctx: BatchContext, env: Mapping[str, str], emit: Listener) -> None:
        self.ctx = ctx
        self.env = env
        self.emit = emit

    def review(self, merges: StageMerges) -> Review:
        try:
            return self._review(merges)
        except Exception as exc:  # a broken review must pause the batch, not kill the lane
            tip = self.ctx.repo.try_rev_parse(f"refs/heads/{self.ctx.target}") or ""
            return Review(
                stage=merges.stage, passed=False, tip=tip, findings=(f"review failed: {exc}",)
            )

    def _review(self, merges: StageMerges) -> Review:
        ctx, stage = self.ctx, merges.stage
        self.emit(
            Notice(level=NoticeLevel.INFO, message=f"stage {stage}: reviewing what it merged")
        )
        review = review_stage(
            checkout=ctx.repo,
            integration=ctx.integration_worktree,
            stage=stage,
            base=f"{merges.merged[0].merge}^1",
            tip=ctx.repo.rev_parse(f"refs/heads/{ctx.target}"),
            merged=merges.merged,
            config=ctx.config.validation,
            env=self.env,
            on_created=lambda path: prepare_integration(ctx, path),
        )
        if not review.passed or not ctx.config.reviews.review_agent:
            return review
        if ctx.executor.name == "script":
            self.emit(
                Notice(level=NoticeLevel.WARNING, message="review_agent: scripts cannot review")
            )
            return review
        verdict = agent_review(
            executor=ctx.executor,
            prps=[m.prp for m in merges.merged],
            repo_root=ctx.root,
            worktree=ctx.integration_worktree,
            batch_id=ctx.batch_id,
            stage=stage,
            target=ctx.target,
            scratch=ctx.state.root / "run" / f"review-stage-{stage}",
            log_path=ctx.state.root / "logs" / f"review-stage-{stage}.log",
            timeout_minutes=ctx.config.run.timeout_minutes,
        )
        findings = tuple(f"review agent: {f}" for f in verdict.findings)
        return replace(review, passed=verdict.passed, findings=review.findings + findings)
