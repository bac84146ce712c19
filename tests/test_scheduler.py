"""The scheduler's rules as data: a ledger view, a plan and settings in, actions out."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import pytest

from ce.core.events import PrpState
from ce.core.vocab import ConflictPolicy
from ce.run import conflicts
from ce.run.conflicts import ConflictAction
from ce.run.ledger import LedgerView, StageState
from ce.run.scheduler import (
    Action,
    BudgetSpent,
    FinishStage,
    Hold,
    PlanView,
    Prepare,
    SendToLane,
    Settings,
    Skip,
    Start,
    Stop,
    next_actions,
    sharing,
)

S = PrpState
P, R, V, M, D = S.PENDING, S.RUNNING, S.VALIDATED, S.MERGING, S.MERGED
W, ST, RV, DONE = StageState.WAITING, StageState.STARTED, StageState.REVIEWING, StageState.DONE

# A: no deps; B needs A; C shares a file with A; D needs B (stage 3).
STAGES = (("A", "C0"), ("B", "C"), ("D",))
DEPS = {"B": ("A",), "D": ("B",), "C": (), "A": (), "C0": ()}
PLAN = PlanView(
    stages=STAGES,
    dependencies=DEPS,
    shares_files=sharing({"x.py": ("A", "C")}),
    priority={"A": 3.0, "B": 2.0, "D": 1.0, "C": 1.0, "C0": 0.5},
    stage_of={p: n for n, ids in enumerate(STAGES, start=1) for p in ids},
)


def view(
    states: dict[str, PrpState], stages: dict[int, StageState] | None = None, spent: float = 0.0
) -> LedgerView:
    return LedgerView(
        states=MappingProxyType(states),
        stages=MappingProxyType(stages or {1: W, 2: W, 3: W}),
        spent_usd=spent,
    )


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "eager": False,
        "slots": 4,
        "continue_on_error": False,
        "auto_review": False,
        "batch_budget_usd": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


ALL_PENDING = {"A": P, "C0": P, "B": P, "C": P, "D": P}

CASES: list[tuple[str, LedgerView, Settings, Hold, list[Action]]] = [
    (
        "stages: the first stage starts, in plan order",
        view(dict(ALL_PENDING)),
        settings(),
        Hold(),
        [Start(prp="A", stage=1), Start(prp="C0", stage=1)],
    ),
    (
        "stages: --max-parallel bounds what is in flight; the next one's worktree is made ahead",
        view(dict(ALL_PENDING)),
        settings(slots=1),
        Hold(),
        [Start(prp="A", stage=1), Prepare(prp="C0")],
    ),
    (
        "stages: a full pool starts nothing, and makes the next one's worktree meanwhile",
        view({"A": R, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(slots=1),
        Hold(),
        [Prepare(prp="C0")],
    ),
    (
        "stages: the next stage waits for every PRP of this one",
        view({"A": D, "C0": R, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(),
        [],
    ),
    (
        "stages: merge in plan order; a later validated one waits for the earlier",
        view({"A": R, "C0": V, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(),
        [],
    ),
    (
        "stages: every validated one in order enters the lane",
        view({"A": V, "C0": V, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(),
        [SendToLane(prp="A"), SendToLane(prp="C0")],
    ),
    (
        "stages: one in the lane, the next validated one follows it",
        view({"A": M, "C0": V, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(),
        [SendToLane(prp="C0")],
    ),
    (
        "stages: a finished stage is reviewed, and the next waits for the review",
        view({"A": D, "C0": D, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(auto_review=True),
        Hold(),
        [FinishStage(stage=1, review=True)],
    ),
    (
        "stages: without a review the next stage starts at once",
        view({"A": D, "C0": D, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(),
        [FinishStage(stage=1, review=False), Start(prp="B", stage=2), Start(prp="C", stage=2)],
    ),
    (
        "stages: a stage that merged nothing is not reviewed",
        view({"A": S.FAILED, "C0": S.SKIPPED, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(auto_review=True, continue_on_error=True),
        Hold(),
        [
            FinishStage(stage=1, review=False),
            Skip(prp="B", blocker="A"),
            Start(prp="C", stage=2),
        ],
    ),
    (
        "stages: nothing starts while a review runs",
        view({"A": D, "C0": D, "B": P, "C": P, "D": P}, {1: RV, 2: W, 3: W}),
        settings(),
        Hold(),
        [],
    ),
    (
        "stages: a failure ends the stage; the next does not start",
        view({"A": S.FAILED, "C0": D, "B": P, "C": P, "D": P}, {1: DONE, 2: W, 3: W}),
        settings(),
        Hold(),
        [Stop()],
    ),
    (
        "stages: a failure lets the rest of its own stage start",
        view({"A": S.PARTIAL, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(slots=1),
        Hold(),
        [Start(prp="C0", stage=1)],
    ),
    (
        "stages: --continue-on-error skips the failed PRP's dependents only",
        view({"A": S.FAILED, "C0": D, "B": P, "C": P, "D": P}, {1: DONE, 2: W, 3: W}),
        settings(continue_on_error=True),
        Hold(),
        [Skip(prp="B", blocker="A"), Start(prp="C", stage=2)],
    ),
    (
        "--stage: only the PRPs of this run count; done ones are not in the view",
        view({"B": P, "C": P}, {1: W, 2: W, 3: W}),
        settings(),
        Hold(),
        [Start(prp="B", stage=2), Start(prp="C", stage=2)],
    ),
    (
        "eager: ready ones start, the longest first; one sharing a file with an active one waits",
        view(dict(ALL_PENDING)),
        settings(eager=True),
        Hold(),
        [Start(prp="A", stage=1), Start(prp="C0", stage=1)],
    ),
    (
        "eager: a PRP starts as soon as its dependencies merged, not at a stage barrier",
        view({"A": D, "C0": R, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(eager=True),
        Hold(),
        [Start(prp="B", stage=2), Start(prp="C", stage=2)],
    ),
    (
        "eager: a file shared with a PRP waiting to merge keeps it waiting",
        view({"A": V, "C0": D, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(eager=True),
        Hold(),
        [SendToLane(prp="A")],
    ),
    (
        "eager: a failure stops every new start",
        view({"A": S.FAILED, "C0": R, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(eager=True),
        Hold(),
        [],
    ),
    (
        "eager: with --continue-on-error the dependents are skipped, transitively",
        view({"A": D, "C0": D, "B": S.FAILED, "C": D, "D": P}, {1: DONE, 2: ST, 3: W}),
        settings(eager=True, continue_on_error=True),
        Hold(),
        [FinishStage(stage=2, review=False), Skip(prp="D", blocker="B")],
    ),
    (
        "budget: once spent, it is said once and nothing new starts",
        view(dict(ALL_PENDING), spent=5.0),
        settings(batch_budget_usd=5.0),
        Hold(),
        [BudgetSpent(spent_usd=5.0, budget_usd=5.0)],
    ),
    (
        "budget: once said, the run ends when nothing is under way",
        view(dict(ALL_PENDING), spent=5.0),
        settings(batch_budget_usd=5.0),
        Hold(budget_spent=True),
        [Stop()],
    ),
    (
        "budget: below it, PRPs start",
        view(dict(ALL_PENDING), spent=4.99),
        settings(batch_budget_usd=5.0, slots=1),
        Hold(),
        [Start(prp="A", stage=1), Prepare(prp="C0")],
    ),
    (
        "budget: spent with nothing left to start is not news",
        view({"A": D, "C0": D, "B": D, "C": D, "D": R}, {1: DONE, 2: DONE, 3: ST}, spent=9.0),
        settings(batch_budget_usd=5.0),
        Hold(),
        [],
    ),
    (
        "paused: nothing starts and nothing enters the lane",
        view({"A": V, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(paused=True),
        [Stop()],
    ),
    (
        "interrupted: nothing starts; a validated branch may still merge",
        view({"A": V, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        settings(),
        Hold(interrupted=True),
        [SendToLane(prp="A")],
    ),
    (
        "all merged: the last stage finishes, then the run stops",
        view({"A": D, "C0": D, "B": D, "C": D, "D": D}, {1: DONE, 2: DONE, 3: ST}),
        settings(),
        Hold(),
        [FinishStage(stage=3, review=False)],
    ),
    (
        "a retried PRP runs again; the dependent it had skipped waits for it, not skipped",
        view({"A": D, "C0": D, "B": P, "C": D, "D": P}, {1: DONE, 2: W, 3: W}),
        settings(continue_on_error=True),
        Hold(),
        [Start(prp="B", stage=2)],
    ),
    (
        "eager: a retried PRP runs again; its dependent waits for it",
        view({"A": D, "C0": D, "B": P, "C": D, "D": P}, {1: DONE, 2: W, 3: W}),
        settings(eager=True),
        Hold(),
        [Start(prp="B", stage=2)],
    ),
    (
        "nothing under way and nothing to do: stop",
        view({"A": D, "C0": D, "B": D, "C": D, "D": D}, {1: DONE, 2: DONE, 3: DONE}),
        settings(),
        Hold(),
        [Stop()],
    ),
]


@pytest.mark.parametrize(
    ("name", "ledger", "rules", "hold", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_next_actions(
    name: str, ledger: LedgerView, rules: Settings, hold: Hold, expected: list[Action]
) -> None:
    assert next_actions(ledger, PLAN, rules, hold) == expected


# One stage of three: what is made ahead while the only slot is taken.
ONE_STAGE = PlanView(
    stages=(("X", "Y", "Z"),),
    dependencies={},
    shares_files={},
    priority={},
    stage_of={"X": 1, "Y": 1, "Z": 1},
)
F = S.FAILED


@dataclass(frozen=True)
class AheadCase:
    name: str
    plan: PlanView
    ledger: LedgerView
    rules: Settings
    hold: Hold
    ahead: frozenset[str]
    expected: list[Action]


AHEAD_CASES = [
    AheadCase(
        name="one worktree ahead at a time",
        plan=PLAN,
        ledger=view({"A": R, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        rules=settings(slots=1),
        hold=Hold(),
        ahead=frozenset({"C0"}),
        expected=[],
    ),
    AheadCase(
        name="the first waiting PRP of the stage, in plan order",
        plan=ONE_STAGE,
        ledger=view({"X": R, "Y": P, "Z": P}, {1: ST}),
        rules=settings(slots=1),
        hold=Hold(),
        ahead=frozenset(),
        expected=[Prepare(prp="Y")],
    ),
    AheadCase(
        name="never a PRP of the next stage: it starts from this stage's merges",
        plan=PLAN,
        ledger=view({"A": D, "C0": R, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        rules=settings(slots=1),
        hold=Hold(),
        ahead=frozenset(),
        expected=[],
    ),
    AheadCase(
        name="none once a failure ends the batch",
        plan=ONE_STAGE,
        ledger=view({"X": F, "Y": R, "Z": P}, {1: ST}),
        rules=settings(slots=1),
        hold=Hold(),
        ahead=frozenset(),
        expected=[],
    ),
    AheadCase(
        name="with --continue-on-error a failure changes nothing",
        plan=ONE_STAGE,
        ledger=view({"X": F, "Y": R, "Z": P}, {1: ST}),
        rules=settings(slots=1, continue_on_error=True),
        hold=Hold(),
        ahead=frozenset(),
        expected=[Prepare(prp="Z")],
    ),
    AheadCase(
        name="none while the batch is paused or interrupted",
        plan=ONE_STAGE,
        ledger=view({"X": R, "Y": P, "Z": P}, {1: ST}),
        rules=settings(slots=1),
        hold=Hold(interrupted=True),
        ahead=frozenset(),
        expected=[],
    ),
    AheadCase(
        name="eager: the first ready one, the longest first",
        plan=PLAN,
        ledger=view({"A": R, "C0": P, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        rules=settings(slots=1, eager=True),
        hold=Hold(),
        ahead=frozenset(),
        expected=[Prepare(prp="C0")],
    ),
    AheadCase(
        name="eager: none sharing a file with the one made ahead starts before it",
        plan=PLAN,
        ledger=view({"A": P, "C0": D, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        rules=settings(slots=1, eager=True),
        hold=Hold(),
        ahead=frozenset({"C"}),
        expected=[Start(prp="C", stage=2)],
    ),
    AheadCase(
        name="eager: never one sharing a file with a PRP under way (it starts from its merge)",
        plan=PLAN,
        ledger=view({"A": R, "C0": D, "B": P, "C": P, "D": P}, {1: ST, 2: W, 3: W}),
        rules=settings(slots=1, eager=True),
        hold=Hold(),
        ahead=frozenset(),
        expected=[],
    ),
]


@pytest.mark.parametrize("case", AHEAD_CASES, ids=[c.name for c in AHEAD_CASES])
def test_worktrees_made_ahead(case: AheadCase) -> None:
    assert next_actions(case.ledger, case.plan, case.rules, case.hold, case.ahead) == case.expected


def test_the_same_view_gives_the_same_actions_whatever_the_dict_order() -> None:
    states = dict(ALL_PENDING)
    reordered = dict(reversed(list(states.items())))
    first = next_actions(view(states), PLAN, settings(eager=True, slots=2), Hold())
    again = next_actions(view(states), PLAN, settings(eager=True, slots=2), Hold())
    assert first == again
    # The view's order is the plan's order; the scheduler breaks ties by it, never by names.
    other = next_actions(view(reordered), PLAN, settings(eager=True, slots=5), Hold())
    assert {a.prp for a in other if isinstance(a, Start)} == {"A", "C0"}


CONFLICT_CASES = [
    ("pause", 0, False, ConflictAction.PAUSE, 0),
    ("pause", 0, True, ConflictAction.SKIP, 0),
    ("agent", 0, False, ConflictAction.RESOLVE, 1),
    ("agent", 1, False, ConflictAction.RESOLVE, 2),
    ("agent", 2, False, ConflictAction.PAUSE, 0),
    ("agent", 2, True, ConflictAction.SKIP, 0),
    ("rerun", 0, False, ConflictAction.RERUN, 1),
    ("rerun", 1, True, ConflictAction.RERUN, 2),
    ("rerun", 2, False, ConflictAction.PAUSE, 0),
]


@pytest.mark.parametrize(("policy", "used", "go_on", "action", "attempt"), CONFLICT_CASES)
def test_conflict_policy(
    policy: ConflictPolicy, used: int, go_on: bool, action: ConflictAction, attempt: int
) -> None:
    decision = conflicts.decide(policy, used, continue_on_error=go_on)
    assert (decision.action, decision.attempt) == (action, attempt)
