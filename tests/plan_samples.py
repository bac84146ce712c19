"""Prp records built by hand for the planner's tests: the sample batch 12 (as the parser must
read /work/shared/prp-samples, copied from its expected.json) and a small builder."""

from __future__ import annotations

from pathlib import Path

from ce.prp.model import Complexity, Findings, Phase, PlanHints, Prp, StatusClass

_STATUS_CLASS = {
    "planning": StatusClass.READY,
    "pending": StatusClass.READY,
    "new": StatusClass.READY,
    "completed": StatusClass.DONE,
    "draft": StatusClass.NOT_RUNNABLE,
}


def make_prp(
    prp_id: str,
    *,
    deps: tuple[str, ...] = (),
    files: tuple[str, ...] = (),
    hours: float | None = None,
    complexity: str = "medium",
    phases: tuple[str, ...] = ("Do it",),
    status: str = "planning",
    order: int | None = None,
    model: str | None = None,
    title: str | None = None,
    warnings: tuple[str, ...] = (),
) -> Prp:
    return Prp(
        id=prp_id,
        path=Path(f"PRPs/{prp_id}.md"),
        title=title or f"Title of {prp_id}",
        status=status,
        status_class=_STATUS_CLASS[status],
        dependencies=deps,
        files=files,
        hints=PlanHints(
            estimated_hours=hours, order=order, complexity=Complexity(complexity), model=model
        ),
        phases=tuple(Phase(number=n, title=t) for n, t in enumerate(phases, start=1)),
        findings=Findings(warnings=warnings),
    )


def sample_batch() -> list[Prp]:
    """Batch 12 of the shared samples, as expected.json says the parser reads it."""
    return [
        make_prp(
            "PRP-12.1.1",
            title="Config loader with cache section",
            hours=2.0,
            complexity="low",
            files=("src/app/config.py", "tests/test_config.py"),
            phases=("Typed settings", "Cache section and tests"),
            order=1,
        ),
        make_prp(
            "PRP-12.2.1",
            title="Cache layer for report queries",
            status="pending",
            deps=("PRP-12.1.1",),
            hours=5.0,
            files=("src/app/cache.py", "src/app/__init__.py"),
            phases=("Setup Module Structure", "LRU with TTL", "Wire into reports"),
            order=2,
        ),
        make_prp(
            "PRP-12.2.2",
            title="Hit/miss metrics",
            status="new",
            deps=("PRP-12.1.1",),
            hours=1.5,
            complexity="low",
            files=("src/app/metrics.py", "src/app/__init__.py"),
            phases=("Counters", "Export"),
            order=2,
        ),
        make_prp(
            "PRP-12.3.1",
            title="API cache control",
            deps=("PRP-12.2.1", "PRP-12.2.2"),
            hours=36.0,
            complexity="high",
            files=("src/app/api.py", "tests/test_api.py"),
            phases=("Cache-Control headers", "Purge endpoint"),
            model="sonnet",
        ),
    ]


EXPECTED_STAGES = {
    "1": ["PRP-12.1.1"],
    "2": ["PRP-12.2.1"],
    "3": ["PRP-12.2.2"],
    "4": ["PRP-12.3.1"],
}
EXPECTED_CONFLICTS = {"src/app/__init__.py": ["PRP-12.2.1", "PRP-12.2.2"]}
EXPECTED_MODELS = {
    "PRP-12.1.1": "sonnet",
    "PRP-12.2.1": "opus",
    "PRP-12.2.2": "sonnet",
    "PRP-12.3.1": "sonnet",
}
EXPECTED_SCORES = {"PRP-12.1.1": 56, "PRP-12.2.1": 89, "PRP-12.2.2": 51, "PRP-12.3.1": 106}
