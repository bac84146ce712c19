"""The ledger: the one owner of the batch's PRP records and stage states.

Every change to a record is one method here: it checks that the move is legal (an illegal jump
is a bug in ce and raises `IllegalTransition`), stamps the time from the injected clock, and
emits its event. Locking: one re-entrant lock, taken by every method and held while the event is
delivered, so listeners see events in the order the changes happened. The engine thread, the
PRP workers (pool threads), the monitor thread and the lane thread all call in; no other code
writes a record. Everything else reads through queries or `view()`, a frozen copy.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ce.core.events import (
    Listener,
    PhaseCommitted,
    PrpChanged,
    PrpState,
    StageFinished,
    StageStarted,
)
from ce.run.hooks import HookResult
from ce.run.reasons import BudgetSpent, Pause
from ce.run.record import NOT_OWN_TIME, OWN_TIME, LevelResult, PolicyTries, PrpRecord
from ce.run.review import Review

S = PrpState
IN_FLIGHT = frozenset({S.PREPARING, S.RUNNING, S.VALIDATING})  # a worker has it
FAILURES = frozenset({S.FAILED, S.PARTIAL})

Moves = Mapping[PrpState, frozenset[PrpState]]
# Every legal move (a state may also be restamped with a new message: RUNNING → RUNNING).
_MOVES: Moves = {
    S.PENDING: frozenset({S.PREPARING, S.SKIPPED}),
    S.PREPARING: frozenset({S.RUNNING, S.VALIDATING, S.VALIDATED, S.PENDING, *FAILURES}),
    S.RUNNING: frozenset({S.VALIDATING, S.VALIDATED, S.PENDING, *FAILURES}),
    S.VALIDATING: frozenset({S.VALIDATED, S.PENDING, *FAILURES}),
    S.VALIDATED: frozenset({S.MERGING}),
    S.MERGING: frozenset({S.MERGED, S.CONFLICT, S.PARTIAL, S.VALIDATED, S.PENDING}),
    S.CONFLICT: frozenset({S.PENDING}),
    S.MERGED: frozenset({S.VALIDATED}),  # its merge was lost: someone moved the target back
    S.PARTIAL: frozenset(),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
}
# A retry (`--retry-prp`, `--stage N --retry`) runs an unmerged PRP again from a fresh start; a
# merged one never (the user is told before: exit 2). Only `Ledger.retry` makes these moves.
RETRY_FROM = frozenset({S.PENDING, S.VALIDATED, S.FAILED, S.PARTIAL, S.CONFLICT, S.SKIPPED})
_RETRIES: Moves = {s: frozenset({S.PENDING} if s in RETRY_FROM else ()) for s in S}


class StageState(enum.Enum):
    WAITING = "waiting"
    STARTED = "started"  # its first PRP started (StageStarted emitted)
    REVIEWING = "reviewing"  # every PRP finished; the review of what it merged runs
    DONE = "done"


class IllegalTransition(RuntimeError):
    """A move the state machine does not allow: a bug in ce, never a user's mistake."""


@dataclass(frozen=True, kw_only=True)
class Spent:
    """What one start's launches reported (None: not reported), and the worktree's size."""

    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None
    disk_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class Worked:
    """What a worker brought back: the fields the ledger records with its final state."""

    state: PrpState  # VALIDATED, PARTIAL, FAILED, or PENDING (interrupted)
    base: str | None
    head: str | None
    phases_done: int
    error: str | None = None
    validation: Mapping[str, LevelResult] = field(default_factory=dict)
    attempts: int = 0  # launches of this start (a relaunch is one more attempt)
    spent: Spent = field(default_factory=Spent)


@dataclass(frozen=True, kw_only=True)
class LedgerView:
    """The ledger at one instant, as the scheduler sees it."""

    states: Mapping[str, PrpState]  # this run's PRPs, in plan order
    stages: Mapping[int, StageState]
    spent_usd: float


class Ledger:
    def __init__(
        self,
        records: Iterable[PrpRecord],
        stages: int,
        listener: Listener,
        clock: Callable[[], float],
    ) -> None:
        self._records = {r.id: r for r in records}
        self._stages = dict.fromkeys(range(1, stages + 1), StageState.WAITING)
        self._emit = listener
        self.clock = clock
        self.lock = threading.RLock()
        self._pause: Pause | None = None
        self._budget: BudgetSpent | None = None
        self._reviews: dict[int, Review] = {}
        self._hooks: list[HookResult] = []

    def restore(self, records: Iterable[PrpRecord]) -> None:
        """A resumed batch: the records as an interrupted run left them, reconciled with git."""
        with self.lock:
            self._records = {r.id: r for r in records}

    # -- queries ------------------------------------------------------------------------------

    def __contains__(self, prp_id: object) -> bool:
        return prp_id in self._records

    def ids(self) -> list[str]:
        return list(self._records)

    def state(self, prp_id: str) -> PrpState:
        return self._records[prp_id].state

    def get(self, prp_id: str) -> PrpRecord:
        """A record to read (callers outside this module never assign to it)."""
        return self._records[prp_id]

    def records(self) -> list[PrpRecord]:
        with self.lock:
            return list(self._records.values())

    def where(self, *states: PrpState) -> list[str]:
        with self.lock:
            return [r.id for r in self._records.values() if r.state in states]

    def in_flight(self) -> list[str]:
        return self.where(*IN_FLIGHT)

    def stage_state(self, stage: int) -> StageState:
        return self._stages[stage]

    def reviewing(self) -> list[int]:
        return [n for n, s in self._stages.items() if s is StageState.REVIEWING]

    def busy(self) -> bool:
        """Something is under way: a worker, a merge or a review."""
        return bool(self.in_flight() or self.where(S.MERGING) or self.reviewing())

    def spent_usd(self) -> float:
        return sum(r.usage.cost_usd or 0.0 for r in self._records.values())

    def view(self) -> LedgerView:
        with self.lock:
            return LedgerView(
                states=MappingProxyType({r.id: r.state for r in self._records.values()}),
                stages=MappingProxyType(dict(self._stages)),
                spent_usd=self.spent_usd(),
            )

    def pause_reason(self) -> Pause | None:
        return self._pause

    def budget_reason(self) -> BudgetSpent | None:
        return self._budget

    def reviews(self) -> list[Review]:
        with self.lock:
            return [r for _, r in sorted(self._reviews.items())]

    def hooks(self) -> list[HookResult]:
        with self.lock:
            return list(self._hooks)

    def interrupted_in_flight(self) -> None:
        """The batch was interrupted: nothing is running any more. What a worker had is
        judged again on --resume; a merge in flight is found on the target by git, or not."""
        with self.lock:
            for record in self._records.values():
                if record.state in IN_FLIGHT:
                    self._move(record, S.PENDING, "interrupted")
                elif record.state is S.MERGING:
                    self._move(record, S.VALIDATED, "interrupted")

    # -- batch facts --------------------------------------------------------------------------

    def pause(self, reason: Pause) -> None:
        with self.lock:
            self._pause = reason

    def spent(self, reason: BudgetSpent) -> None:
        with self.lock:
            self._budget = reason

    def hook_ran(self, result: HookResult | None) -> None:
        if result is not None:
            with self.lock:
                self._hooks.append(result)

    # -- PRP transitions ----------------------------------------------------------------------

    def announce_merged_earlier(self) -> None:
        with self.lock:
            for record in self._records.values():
                if record.state is S.MERGED:
                    self._emit(
                        PrpChanged(
                            at=self.clock(),
                            prp=record.id,
                            state=S.MERGED,
                            message="merged earlier",
                            earlier=True,
                        )
                    )

    def start(self, prp_id: str, message: str) -> None:
        with self.lock:
            record = self._records[prp_id]
            self._move(record, S.PREPARING, message)
            record.attempts += 1
            # Set again when it is judged: a head saved while it runs would make the commits
            # of an agent killed with ce look like the user's own (see `Assignment.left_at`).
            record.head = None

    def progress(self, prp_id: str, state: PrpState, message: str = "") -> None:
        """A worker's step: running (each launch), validating."""
        with self.lock:
            self._move(self._records[prp_id], state, message)

    def based_on(self, prp_id: str, base: str) -> None:
        """Its worktree exists, on this base: from now its checkpoint commits are counted."""
        with self.lock:
            self._records[prp_id].base = base

    def phases_committed(self, prp_id: str, done: int, phase: int, title: str) -> None:
        """The monitor saw new checkpoint commits on the branch (`done` phases in all)."""
        with self.lock:
            record = self._records.get(prp_id)
            if record is None or done <= record.phases_done or record.state.finished:
                return
            record.phases_done = done
            self._emit(
                PhaseCommitted(
                    at=self.clock(), prp=prp_id, phase=phase, total=record.info.phases, title=title
                )
            )

    def worked(self, prp_id: str, result: Worked) -> None:
        with self.lock:
            record = self._records[prp_id]
            record.base = result.base or record.base
            record.head = result.head
            record.phases_done = result.phases_done
            record.attempts += max(0, result.attempts - 1)  # relaunches within this start
            record.validation = dict(result.validation)
            spent = result.spent
            record.usage.disk_bytes = spent.disk_bytes or record.usage.disk_bytes
            record.usage.add(
                cost_usd=spent.cost_usd,
                input_tokens=spent.input_tokens,
                output_tokens=spent.output_tokens,
                session_id=spent.session_id,
            )
            message = "validated" if result.state is S.VALIDATED else result.error or ""
            if result.state is not S.VALIDATED:
                record.error = result.error
            self._move(record, result.state, message)

    def skip(self, prp_id: str, reason: str) -> None:
        with self.lock:
            record = self._records[prp_id]
            record.error = reason
            self._move(record, S.SKIPPED, reason)

    def to_lane(self, prp_id: str) -> None:
        with self.lock:
            self._move(self._records[prp_id], S.MERGING)

    def merged(self, prp_id: str, commit: str, validation: Mapping[str, LevelResult]) -> None:
        with self.lock:
            record = self._records[prp_id]
            record.merged_as = commit
            record.validation.update(validation)
            self._move(record, S.MERGED)

    def merge_failed(
        self,
        prp_id: str,
        state: PrpState,
        error: str,
        validation: Mapping[str, LevelResult] | None = None,
    ) -> None:
        """The merged tree failed its checks (PARTIAL), or conflicts (CONFLICT)."""
        with self.lock:
            record = self._records[prp_id]
            record.error = error
            record.validation.update(validation or {})
            self._move(record, state, error)

    def merge_lost(self, prp_id: str, target: str) -> None:
        """Its merge is no longer reachable from the target: validated, to be merged again (its
        branch is kept, never cleaned up as merged)."""
        with self.lock:
            record = self._records[prp_id]
            record.merged_as = None
            self._move(record, S.VALIDATED, f"its merge is no longer on {target}")

    def merge_refused(self, prp_id: str, message: str) -> None:
        """The target could not be moved (the checkout refused): validated, waiting again."""
        with self.lock:
            self._move(self._records[prp_id], S.VALIDATED, message)

    def again(self, prp_id: str, message: str, *, resolving: bool) -> None:
        """A conflict policy sends it back: its executor resolves in its worktree (`agent`),
        or it runs again from scratch from the new target (`rerun`)."""
        with self.lock:
            record = self._records[prp_id]
            record.policy.used += 1
            record.policy.resolving = resolving
            if not resolving:
                record.base = record.head = None
                record.phases_done = 0
                record.validation = {}
            self._move(record, S.PENDING, message)

    def retry(self, prp_id: str, kept: tuple[str, ...]) -> None:
        """It runs again from the target, from a fresh start; `kept`: the branches keeping its
        earlier attempts (each named once, oldest first)."""
        with self.lock:
            record = self._records[prp_id]
            record.base = record.head = record.merged_as = record.error = None
            record.phases_done = 0
            record.validation = {}
            record.policy = PolicyTries(kept=tuple(dict.fromkeys((*record.policy.kept, *kept))))
            message = f"retry (its earlier attempt is kept on {kept[-1]})" if kept else "retry"
            self._move(record, S.PENDING, message, _RETRIES)

    def take_resolving(self, prp_id: str) -> bool:
        with self.lock:
            record = self._records[prp_id]
            resolving, record.policy.resolving = record.policy.resolving, False
            return resolving

    def _move(self, record: PrpRecord, state: S, message: str = "", moves: Moves = _MOVES) -> None:
        if state is not record.state and state not in moves[record.state]:
            raise IllegalTransition(f"{record.id}: {record.state.value} → {state.value}")
        now = self.clock()
        if state in OWN_TIME:
            record.timing.start(now)
        elif state.finished or state in NOT_OWN_TIME:
            record.timing.stop(now, finished=state.finished)
        record.state = state
        self._emit(
            PrpChanged(
                at=now, prp=record.id, state=state, message=message, cost_usd=record.cost_usd
            )
        )

    # -- stages -------------------------------------------------------------------------------

    def stage_started(self, stage: int, prps: tuple[str, ...]) -> None:
        with self.lock:
            if self._stages[stage] is StageState.WAITING:
                self._stages[stage] = StageState.STARTED
                self._emit(StageStarted(at=self.clock(), stage=stage, prps=prps))

    def stage_finished(self, stage: int, *, review: bool) -> None:
        with self.lock:
            self._stage_move(stage, StageState.STARTED)
            self._stages[stage] = StageState.REVIEWING if review else StageState.DONE
            self._emit(StageFinished(at=self.clock(), stage=stage))

    def review_again(self, stage: int) -> None:
        """A resumed batch repeats the review that failed before going on."""
        with self.lock:
            self._stages[stage] = StageState.REVIEWING

    def stage_reviewed(self, review: Review) -> None:
        with self.lock:
            self._stage_move(review.stage, StageState.REVIEWING)
            self._stages[review.stage] = StageState.DONE
            self._reviews[review.stage] = review

    def _stage_move(self, stage: int, expected: StageState) -> None:
        if self._stages[stage] is not expected:
            raise IllegalTransition(
                f"stage {stage}: {self._stages[stage].value}, expected {expected.value}"
            )
