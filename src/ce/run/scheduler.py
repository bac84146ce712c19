"""What to do next, as a pure function of the ledger's view, the plan and the settings.

No git, no processes, no clock: `next_actions` reads data and returns decisions, and the engine
applies them. Time plays no part here: staggered launches and rate-limit holds are the launch
gate's, inside each worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ce.core.events import PrpState
from ce.run.ledger import FAILURES, IN_FLIGHT, LedgerView, StageState

S = PrpState


@dataclass(frozen=True, kw_only=True)
class PlanView:
    """The plan as the scheduler needs it; built once per batch."""

    stages: tuple[tuple[str, ...], ...]
    dependencies: Mapping[str, tuple[str, ...]]
    shares_files: Mapping[str, frozenset[str]]  # PRP → PRPs declaring an overlapping file
    priority: Mapping[str, float]  # eager: the longest remaining path first
    stage_of: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class Settings:
    eager: bool
    slots: int  # PRPs in flight at once
    continue_on_error: bool
    auto_review: bool
    batch_budget_usd: float | None


@dataclass(frozen=True, kw_only=True)
class Hold:
    """Why nothing new may start: the batch paused, was interrupted, or spent its budget."""

    paused: bool = False
    interrupted: bool = False
    budget_spent: bool = False


@dataclass(frozen=True, kw_only=True)
class Start:
    prp: str
    stage: int


@dataclass(frozen=True, kw_only=True)
class Prepare:
    """Every slot is taken: make the worktree of the PRP that starts next meanwhile, so that a
    slot freed is a launch at once (the checkout of a large repository takes seconds)."""

    prp: str


@dataclass(frozen=True, kw_only=True)
class Skip:
    prp: str
    blocker: str  # the dependency that did not merge


@dataclass(frozen=True, kw_only=True)
class SendToLane:
    prp: str


@dataclass(frozen=True, kw_only=True)
class FinishStage:
    stage: int
    review: bool  # review what it merged (in the lane) before the post_stage hook


@dataclass(frozen=True, kw_only=True)
class BudgetSpent:
    spent_usd: float
    budget_usd: float


@dataclass(frozen=True, kw_only=True)
class Stop:
    """Nothing is under way and nothing can start: the run is over."""


Action = Start | Prepare | Skip | SendToLane | FinishStage | BudgetSpent | Stop


def next_actions(
    view: LedgerView,
    plan: PlanView,
    settings: Settings,
    hold: Hold,
    ahead: frozenset[str] = frozenset(),
) -> list[Action]:
    """`ahead`: the PRPs whose worktree is made (or being made) before they start."""
    actions: list[Action] = []
    budget = _budget(view, settings, hold)
    if budget is not None:
        actions.append(budget)
        hold = Hold(paused=hold.paused, interrupted=hold.interrupted, budget_spent=True)
    finished = _finished_stages(view, plan, settings, hold)
    actions += finished
    # Stages: the next one starts from a reviewed target, so not beside a review it starts.
    reviews = any(f.review for f in finished)
    if not (hold.paused or hold.interrupted or hold.budget_spent):
        if settings.eager:
            actions += _eager(view, plan, settings, ahead)
        elif not reviews:
            actions += _staged(view, plan, settings, ahead)
    if not hold.paused:
        actions += _lane(view, plan, settings)
    if not actions and not _busy(view):
        actions.append(Stop())
    return actions


def stopping(view: LedgerView, settings: Settings) -> bool:
    """A failure without --continue-on-error: the current stage ends, nothing more starts."""
    return not settings.continue_on_error and any(s in FAILURES for s in view.states.values())


def _busy(view: LedgerView) -> bool:
    return any(s in IN_FLIGHT or s is S.MERGING for s in view.states.values()) or any(
        s is StageState.REVIEWING for s in view.stages.values()
    )


def _budget(view: LedgerView, settings: Settings, hold: Hold) -> BudgetSpent | None:
    """Once the agents reported spending the batch budget, no new PRP starts; running ones
    finish. A resume with a higher budget goes on."""
    budget = settings.batch_budget_usd
    if hold.budget_spent or budget is None or view.spent_usd < budget:
        return None
    if not any(s is S.PENDING for s in view.states.values()):
        return None
    return BudgetSpent(spent_usd=view.spent_usd, budget_usd=budget)


def current_stage(view: LedgerView, plan: PlanView) -> int | None:
    unfinished = [plan.stage_of[p] for p, s in view.states.items() if not s.finished]
    return min(unfinished) if unfinished else None


def _failed_dependency(prp_id: str, view: LedgerView, plan: PlanView) -> str | None:
    for dep in plan.dependencies.get(prp_id, ()):
        state = view.states.get(dep)
        if state is not None and state.finished and state is not S.MERGED:
            return dep
    return None


def _staged(
    view: LedgerView, plan: PlanView, settings: Settings, ahead: frozenset[str]
) -> list[Action]:
    """Stage barriers: the lowest unfinished stage, in plan order, as slots free up; the next
    stage starts from a reviewed target."""
    if any(s is StageState.REVIEWING for s in view.stages.values()):
        return []
    stage = current_stage(view, plan)
    if stage is None:
        return []
    ids = [p for p in plan.stages[stage - 1] if p in view.states]
    if stopping(view, settings) and all(view.states[p] is S.PENDING for p in ids):
        return []
    free = settings.slots - sum(1 for s in view.states.values() if s in IN_FLIGHT)
    actions: list[Action] = []
    waiting: list[str] = []  # no slot for them yet
    for prp_id in ids:
        if view.states[prp_id] is not S.PENDING:
            continue
        blocker = _failed_dependency(prp_id, view, plan)
        if blocker is not None:
            actions.append(Skip(prp=prp_id, blocker=blocker))
        elif free > 0:
            actions.append(Start(prp=prp_id, stage=stage))
            free -= 1
        else:
            waiting.append(prp_id)
    return actions + _prepare(waiting, view, settings, ahead)


def _prepare(
    waiting: Sequence[str], view: LedgerView, settings: Settings, ahead: frozenset[str]
) -> list[Action]:
    """One worktree made ahead at a time, for the first PRP waiting for a slot; none once a
    failure ends the batch (nothing more starts)."""
    if not waiting or ahead or stopping(view, settings):
        return []
    return [Prepare(prp=waiting[0])]


def _eager(
    view: LedgerView, plan: PlanView, settings: Settings, ahead: frozenset[str]
) -> list[Action]:
    """Start what is ready now: dependencies merged, no active PRP sharing a file, a free
    slot; the longest first, since the longest one bounds the batch."""
    if stopping(view, settings):
        return []
    actions: list[Action] = []
    ready: list[str] = []
    for prp_id, state in view.states.items():
        if state is not S.PENDING:
            continue
        blocker = _failed_dependency(prp_id, view, plan)
        if blocker is not None:
            actions.append(Skip(prp=prp_id, blocker=blocker))
        elif _dependencies_merged(prp_id, view, plan):
            ready.append(prp_id)
    order = {p: n for n, p in enumerate(view.states)}
    ready.sort(key=lambda p: (-plan.priority.get(p, 0.0), order[p]))
    # A worktree made ahead is taken from today's tip: none sharing a file with it starts before
    # it, or its base would miss that one's merge (the serialization eager keeps by files).
    active = {p for p, s in view.states.items() if s is not S.PENDING and not s.finished}
    active |= ahead
    free = settings.slots - sum(1 for s in view.states.values() if s in IN_FLIGHT)
    waiting: list[str] = []  # free to start but for a slot (its worktree: from today's tip)
    for prp_id in ready:
        if not active.isdisjoint(plan.shares_files.get(prp_id, ())):
            continue
        if free <= 0:
            waiting.append(prp_id)
            continue
        actions.append(Start(prp=prp_id, stage=plan.stage_of[prp_id]))
        active.add(prp_id)
        free -= 1
    return actions + _prepare(waiting, view, settings, ahead)


def _dependencies_merged(prp_id: str, view: LedgerView, plan: PlanView) -> bool:
    return all(
        view.states.get(dep, S.MERGED) is S.MERGED for dep in plan.dependencies.get(prp_id, ())
    )


def _lane(view: LedgerView, plan: PlanView, settings: Settings) -> list[Action]:
    """Stages: merge in plan order within the stage, each as soon as it and those before it
    are validated. Eager: every validated branch enters the lane at once."""
    if settings.eager:
        return [SendToLane(prp=p) for p, s in view.states.items() if s is S.VALIDATED]
    stage = current_stage(view, plan)
    if stage is None:
        return []
    actions: list[Action] = []
    for prp_id in plan.stages[stage - 1]:
        state = view.states.get(prp_id)
        if state is None or state.finished or state is S.MERGING:
            continue
        if state is not S.VALIDATED:
            break
        actions.append(SendToLane(prp=prp_id))
    return actions


def _finished_stages(
    view: LedgerView, plan: PlanView, settings: Settings, hold: Hold
) -> list[FinishStage]:
    actions: list[FinishStage] = []
    for number, stage_state in view.stages.items():
        if stage_state is not StageState.STARTED:
            continue
        ids = [p for p in plan.stages[number - 1] if p in view.states]
        if all(view.states[p].finished for p in ids):
            merged = any(view.states[p] is S.MERGED for p in ids)
            review = settings.auto_review and merged and not hold.paused
            actions.append(FinishStage(stage=number, review=review))
    return actions


def sharing(conflicts: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """PRP → the PRPs declaring a file that overlaps one of its own."""
    found: dict[str, set[str]] = {}
    for ids in conflicts.values():
        for prp_id in ids:
            found.setdefault(prp_id, set()).update(i for i in ids if i != prp_id)
    return {p: frozenset(others) for p, others in found.items()}
