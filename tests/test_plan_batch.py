"""A batch of PRPs → BatchPlan: validation against the run and the known PRPs, the dry-run JSON."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ce.core.errors import CeError
from ce.plan.batch import plan_batch
from ce.plan.graph import CycleError
from plan_samples import (
    EXPECTED_CONFLICTS,
    EXPECTED_MODELS,
    EXPECTED_SCORES,
    EXPECTED_STAGES,
    make_prp,
    sample_batch,
)


def test_sample_batch_dry_run_json() -> None:
    bp = plan_batch(list(reversed(sample_batch())))
    assert bp.dry_run_json("12") == {
        "batch_id": "12",
        "stages": EXPECTED_STAGES,
        "done": [],
        "file_conflicts": EXPECTED_CONFLICTS,
        "moves": [{"prp": "PRP-12.2.2", "from_stage": 2, "to_stage": 3, "because": ["PRP-12.2.1"]}],
        "prps": {
            "PRP-12.1.1": {
                "title": "Config loader with cache section",
                "status": "planning",
                "dependencies": [],
                "files": ["src/app/config.py", "tests/test_config.py"],
                "phases": ["Typed settings", "Cache section and tests"],
                "estimated_hours": 2.0,
                "complexity": "low",
                "model": "sonnet",
                "stage": 1,
            },
            "PRP-12.2.1": {
                "title": "Cache layer for report queries",
                "status": "pending",
                "dependencies": ["PRP-12.1.1"],
                "files": ["src/app/cache.py", "src/app/__init__.py"],
                "phases": ["Setup Module Structure", "LRU with TTL", "Wire into reports"],
                "estimated_hours": 5.0,
                "complexity": "medium",
                "model": "opus",
                "stage": 2,
            },
            "PRP-12.2.2": {
                "title": "Hit/miss metrics",
                "status": "new",
                "dependencies": ["PRP-12.1.1"],
                "files": ["src/app/metrics.py", "src/app/__init__.py"],
                "phases": ["Counters", "Export"],
                "estimated_hours": 1.5,
                "complexity": "low",
                "model": "sonnet",
                "stage": 3,
            },
            "PRP-12.3.1": {
                "title": "API cache control",
                "status": "planning",
                "dependencies": ["PRP-12.2.1", "PRP-12.2.2"],
                "files": ["src/app/api.py", "tests/test_api.py"],
                "phases": ["Cache-Control headers", "Purge endpoint"],
                "estimated_hours": 36.0,
                "complexity": "high",
                "model": "sonnet",
                "stage": 4,
            },
        },
    }
    assert list(bp.prps) == ["PRP-12.1.1", "PRP-12.2.1", "PRP-12.2.2", "PRP-12.3.1"]
    assert dict(bp.models) == EXPECTED_MODELS
    assert dict(bp.scores) == EXPECTED_SCORES


def test_dry_run_json_without_batch_id() -> None:
    assert plan_batch([make_prp("PRP-1")]).dry_run_json(None)["batch_id"] is None


def test_model_override_applies_to_every_prp() -> None:
    bp = plan_batch(sample_batch(), model_override="haiku")
    assert set(bp.models.values()) == {"haiku"}
    assert dict(bp.scores) == EXPECTED_SCORES  # still reported: it says what auto would pick


def test_hours() -> None:
    bp = plan_batch(
        [
            make_prp("A", hours=2),
            make_prp("B", hours=3),
            make_prp("C", deps=("A",), hours=1),
            make_prp("D", deps=("A",)),  # no estimate: counts 0
            make_prp("E", hours=10, status="completed"),  # done already: no work left
        ]
    )
    assert bp.sequential_hours == 6
    assert bp.parallel_hours == 4
    assert plan_batch(sample_batch()).parallel_hours == 44.5  # conflicts serialized it all


def test_done_dependency_outside_the_run_is_satisfied() -> None:
    done = make_prp("PRP-1.1", status="completed")
    bp = plan_batch([make_prp("PRP-2.1", deps=("PRP-1.1",))], external={"PRP-1.1": done})
    assert bp.plan.stages == (("PRP-2.1",),)
    assert bp.dry_run_json(None)["prps"]["PRP-2.1"]["dependencies"] == ["PRP-1.1"]


def test_dependency_outside_the_run_that_is_not_done() -> None:
    draft = make_prp("PRP-1.1", status="draft")
    with pytest.raises(CeError) as caught:
        plan_batch([make_prp("PRP-2.1", deps=("PRP-1.1",))], external={"PRP-1.1": draft})
    message = str(caught.value)
    assert "PRP-2.1 (PRPs/PRP-2.1.md) depends on PRP-1.1 (PRPs/PRP-1.1.md)" in message
    assert "status is 'draft' (not to be run)" in message
    assert "add PRP-1.1 to the run" in message


def test_dependency_not_found() -> None:
    with pytest.raises(CeError) as caught:
        plan_batch([make_prp("PRP-2.1", deps=("PRP-9.9",))])
    message = str(caught.value)
    assert "PRP-2.1 (PRPs/PRP-2.1.md) depends on PRP-9.9, which was not found" in message
    assert "remove the dependency" in message


def test_dependency_inside_the_run_wins_over_external() -> None:
    external = {"PRP-1": make_prp("PRP-1", status="draft")}
    bp = plan_batch([make_prp("PRP-1"), make_prp("PRP-2", deps=("PRP-1",))], external=external)
    assert bp.plan.stages == (("PRP-1",), ("PRP-2",))


def test_self_dependency() -> None:
    with pytest.raises(CycleError, match=r"PRP-1 \(PRPs/PRP-1\.md\) depends on itself"):
        plan_batch([make_prp("PRP-1", deps=("PRP-1",))])


def test_duplicate_ids_name_both_files() -> None:
    first = make_prp("PRP-1")
    second = replace(first, path=first.path.with_name("other.md"))
    with pytest.raises(CeError, match=r"Duplicate PRP id PRP-1 in PRPs/PRP-1\.md and PRPs/other"):
        plan_batch([first, second])


def test_cycle_names_the_files() -> None:
    prps = [make_prp("PRP-1", deps=("PRP-2",)), make_prp("PRP-2", deps=("PRP-1",))]
    with pytest.raises(CycleError) as caught:
        plan_batch(prps)
    assert caught.value.cycle == ("PRP-1", "PRP-2", "PRP-1")
    assert "PRPs/PRP-1.md, PRPs/PRP-2.md" in str(caught.value)


def test_warnings_in_id_order() -> None:
    prps = [
        make_prp("PRP-10", warnings=("ten: a", "ten: b")),
        make_prp("PRP-9", warnings=("nine",)),
        make_prp("PRP-1"),
    ]
    assert plan_batch(prps).warnings == ("nine", "ten: a", "ten: b")
