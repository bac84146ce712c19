"""Which model works on a PRP: `--model`, else the PRP's own `model:`, else the seed formula."""

from __future__ import annotations

import math

from ce.prp.model import Complexity, Prp

_COMPLEXITY_WEIGHT = {Complexity.LOW: 0.5, Complexity.MEDIUM: 1.0, Complexity.HIGH: 1.5}
# (upper bound exclusive, model), cheapest first; anything above the last bound is opus.
_THRESHOLDS = ((40, "haiku"), (70, "sonnet"))
_TOP_MODEL = "opus"


def model_score(prp: Prp) -> int:
    """The seed formula. Rounded down, which keeps every `score < bound` comparison exact."""
    phases = max(prp.phase_count, 1)  # a PRP without phase headings is one phase
    score = (
        _COMPLEXITY_WEIGHT[prp.hints.complexity] * 40
        + min((prp.hints.estimated_hours or 0) * 10, 30)
        + min(len(prp.files) * 5, 20)
        + min(phases * 3, 10)
    )
    return math.floor(score)


def assign_model(prp: Prp, override: str | None = None, *, score: int | None = None) -> str:
    """`score` is `model_score(prp)`, for a caller that has it already."""
    if override:
        return override
    if prp.hints.model:
        return prp.hints.model
    if score is None:
        score = model_score(prp)
    return next((model for bound, model in _THRESHOLDS if score < bound), _TOP_MODEL)
