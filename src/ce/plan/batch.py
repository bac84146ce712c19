"""A batch of PRPs → a checked plan: stages, conflicts, moves, a model per PRP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ce.core.errors import CeError
from ce.core.suggest import did_you_mean
from ce.plan.graph import CycleError, Plan, PlanItem, id_key, plan_stages
from ce.plan.models import assign_model, model_score
from ce.prp.model import Prp, StatusClass, status_words

_NO_PRPS: Mapping[str, Prp] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class BatchPlan:
    plan: Plan
    prps: Mapping[str, Prp]  # id → PRP, in plan order
    models: Mapping[str, str]
    scores: Mapping[str, int]
    warnings: tuple[str, ...]

    @property
    def sequential_hours(self) -> float:
        """The work left: PRPs already done count 0, as do PRPs without an estimate."""
        return sum(_hours(p) for p in self.prps.values())

    @property
    def parallel_hours(self) -> float:
        """Stages run one after another; a stage lasts as long as its longest PRP."""
        return sum(max(_hours(self.prps[i]) for i in stage) for stage in self.plan.stages)

    @property
    def done(self) -> tuple[str, ...]:
        """The PRPs already done, in plan order: they satisfy dependencies and do not run."""
        return tuple(i for i, p in self.prps.items() if p.status_class is StatusClass.DONE)

    def to_run(self, stage: int | None = None) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """The stages that have work left (of stage `stage` only, when given), each with its
        number in the plan (what `--stage N` names) and its PRPs that are not done."""
        done = set(self.done)
        left = (
            (number, tuple(i for i in ids if i not in done))
            for number, ids in enumerate(self.plan.stages, start=1)
            if stage is None or number == stage
        )
        return tuple((number, ids) for number, ids in left if ids)

    def dry_run_json(self, batch_id: str | None, stage: int | None = None) -> dict[str, Any]:
        """The `--dry-run --json` contract of DESIGN.md: `stages` holds what will run (by plan
        stage number), `done` what is done already; `prps` has every PRP of the plan."""
        stages = self.plan.stage_index()
        return {
            "batch_id": batch_id,
            "stages": {str(number): list(ids) for number, ids in self.to_run(stage)},
            "done": list(self.done),
            "file_conflicts": {f: list(ids) for f, ids in self.plan.file_conflicts.items()},
            "moves": [
                {
                    "prp": m.prp,
                    "from_stage": m.from_stage,
                    "to_stage": m.to_stage,
                    "because": list(m.because),
                }
                for m in self.plan.moves
            ],
            "prps": {prp_id: self._prp_json(prp, stages) for prp_id, prp in self.prps.items()},
        }

    def _prp_json(self, prp: Prp, stages: Mapping[str, int]) -> dict[str, Any]:
        return {
            "title": prp.title,
            "status": prp.status,
            "dependencies": list(prp.dependencies),
            "files": list(prp.files),
            "phases": [phase.title for phase in prp.phases],
            "estimated_hours": prp.hints.estimated_hours,
            "complexity": prp.hints.complexity.value,
            "model": self.models[prp.id],
            "stage": stages[prp.id],
        }


def _hours(prp: Prp) -> float:
    if prp.status_class is StatusClass.DONE:  # planned so that it satisfies dependencies
        return 0.0
    return prp.hints.estimated_hours or 0.0


def plan_batch(
    prps: Sequence[Prp],
    *,
    external: Mapping[str, Prp] = _NO_PRPS,
    model_override: str | None = None,
) -> BatchPlan:
    """Check the batch and plan it. Dependencies on PRPs outside the run must be done already
    (they are satisfied and left out of the graph); anything else is a CeError naming the file."""
    by_id = {prp.id: prp for prp in prps}
    # plan_stages rejects duplicate ids, naming both files (PlanItem.source).
    plan = plan_stages([_item(prp, by_id, external) for prp in prps])
    ordered = {prp_id: by_id[prp_id] for prp_id in plan.sorted_order}
    scores = {i: model_score(p) for i, p in ordered.items()}
    models = {i: assign_model(p, model_override, score=scores[i]) for i, p in ordered.items()}
    # Sorting only the PRPs that have warnings: usually none, so no second sort of every id.
    warned = sorted((i for i, p in by_id.items() if p.findings.warnings), key=id_key)
    return BatchPlan(
        plan=plan,
        prps=MappingProxyType(ordered),
        models=MappingProxyType(models),
        scores=MappingProxyType(scores),
        warnings=tuple(w for i in warned for w in by_id[i].findings.warnings),
    )


def _item(prp: Prp, run: Mapping[str, Prp], external: Mapping[str, Prp]) -> PlanItem:
    inside = []
    for dep in prp.dependencies:
        if dep == prp.id:
            raise CycleError(
                f"{prp.id} ({prp.path}) depends on itself: remove {prp.id} from its dependencies.",
                cycle=(prp.id, prp.id),
            )
        if dep in run:
            inside.append(dep)
        else:
            _check_external(prp, dep, external.get(dep), known=(*run, *external))
    return PlanItem(
        id=prp.id,
        dependencies=tuple(inside),
        files=prp.files,
        order=prp.hints.order,
        source=str(prp.path),
    )


def _check_external(prp: Prp, dep: str, found: Prp | None, *, known: Iterable[str]) -> None:
    if found is not None and found.status_class is StatusClass.DONE:
        return
    where = f"{prp.id} ({prp.path}) depends on {dep}"
    if found is None:
        raise CeError(
            f"{where}, which was not found in this run or among the PRP files"
            f"{did_you_mean(dep, known)}: check the id, add {dep} to the run, or remove the "
            "dependency."
        )
    raise CeError(
        f"{where} ({found.path}), whose status is {status_words(found)}, and it is not part "
        f"of this run: add {dep} to the run, complete it first, or remove the dependency."
    )
