"""Model routing: `--model`, then the PRP's own `model:`, then the seed formula."""

from __future__ import annotations

import pytest

from ce.plan.models import assign_model, model_score
from plan_samples import EXPECTED_MODELS, EXPECTED_SCORES, make_prp, sample_batch


def test_samples_score_and_route_as_expected() -> None:
    prps = sample_batch()
    assert {p.id: model_score(p) for p in prps} == EXPECTED_SCORES
    assert {p.id: assign_model(p) for p in prps} == EXPECTED_MODELS


@pytest.mark.parametrize(
    ("complexity", "hours", "counts", "expected"),
    [
        ("low", None, (0, 1), (23, "haiku")),  # missing hours count 0
        ("low", 1.65, (0, 1), (39, "haiku")),  # 39.5 rounds down: still below 40
        ("low", 1.7, (0, 1), (40, "sonnet")),
        ("medium", 2.65, (0, 1), (69, "sonnet")),  # 69.5
        ("medium", 2.7, (0, 1), (70, "opus")),
        ("high", 100, (10, 10), (120, "opus")),  # every term at its cap: 60 + 30 + 20 + 10
        ("medium", 0, (0, 0), (43, "sonnet")),  # no phase headings: one phase
    ],
)
def test_formula(
    complexity: str, hours: float | None, counts: tuple[int, int], expected: tuple[int, str]
) -> None:
    files, phases = counts
    prp = make_prp(
        "PRP-1",
        complexity=complexity,
        hours=hours,
        files=tuple(f"f{n}.py" for n in range(files)),
        phases=tuple(f"Phase {n}" for n in range(phases)),
    )
    assert (model_score(prp), assign_model(prp)) == expected


def test_own_model_beats_the_formula_and_override_beats_both() -> None:
    prp = make_prp("PRP-1", complexity="high", hours=30, model="haiku")
    assert model_score(prp) > 70
    assert assign_model(prp) == "haiku"
    assert assign_model(prp, "sonnet") == "sonnet"
    assert assign_model(make_prp("PRP-2"), "opus") == "opus"
