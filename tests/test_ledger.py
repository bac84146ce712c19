"""The ledger: the only writer of PRP state; legal moves only, stamped by its clock, each one
an event."""

from __future__ import annotations

import pytest

from ce.core.events import Event, PhaseCommitted, PrpChanged, PrpInfo, PrpState, StageStarted
from ce.run.ledger import IllegalTransition, Ledger, StageState, Worked
from ce.run.record import PrpRecord

S = PrpState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(prp_id: str) -> PrpRecord:
    info = PrpInfo(
        id=prp_id, title=prp_id, stage=1, model="haiku", phases=3, branch=prp_id, worktree="/w"
    )
    return PrpRecord(info=info)


def make(*ids: str) -> tuple[Ledger, list[Event], Clock]:
    events: list[Event] = []
    clock = Clock()
    return Ledger([record(i) for i in ids], 1, events.append, clock), events, clock


def worked(state: PrpState, **extra: object) -> Worked:
    fields: dict[str, object] = {"state": state, "base": "b", "head": "h", "phases_done": 3}
    fields.update(extra)
    return Worked(**fields)  # type: ignore[arg-type]


def test_a_prp_goes_from_pending_to_merged_one_event_per_move() -> None:
    ledger, events, clock = make("A")
    ledger.start("A", "worktree /w")
    clock.now += 5
    ledger.progress("A", S.RUNNING, "attempt 1")
    ledger.progress("A", S.VALIDATING)
    ledger.worked("A", worked(S.VALIDATED))
    ledger.to_lane("A")
    ledger.merged("A", "m" * 40, {})
    states = [e.state for e in events if isinstance(e, PrpChanged)]
    assert states == [S.PREPARING, S.RUNNING, S.VALIDATING, S.VALIDATED, S.MERGING, S.MERGED]
    assert [e.at for e in events] == [1000.0] + [1005.0] * 5  # stamped by the ledger's clock
    assert ledger.get("A").merged_as == "m" * 40
    assert ledger.get("A").attempts == 1


@pytest.mark.parametrize(
    ("setup", "illegal"),
    [
        ([], lambda led: led.to_lane("A")),  # pending → merging
        ([], lambda led: led.merged("A", "x", {})),  # pending → merged
        ([lambda led: led.start("A", "")], lambda led: led.skip("A", "why")),  # preparing → skipped
        (
            [lambda led: led.start("A", ""), lambda led: led.worked("A", worked(S.FAILED))],
            lambda led: led.start("A", ""),  # a failed PRP does not start again in this run
        ),
    ],
)
def test_illegal_moves_raise(setup: list, illegal: object) -> None:  # type: ignore[type-arg]
    ledger, _, _ = make("A")
    for step in setup:
        step(ledger)
    with pytest.raises(IllegalTransition):
        illegal(ledger)  # type: ignore[operator]


def test_queries_are_over_record_states() -> None:
    ledger, _, _ = make("A", "B", "C")
    ledger.start("A", "")
    ledger.start("B", "")
    ledger.worked("B", worked(S.VALIDATED))
    ledger.to_lane("B")
    assert ledger.in_flight() == ["A"]
    assert ledger.where(S.MERGING) == ["B"]
    assert ledger.busy()
    assert dict(ledger.view().states) == {"A": S.PREPARING, "B": S.MERGING, "C": S.PENDING}


def test_a_refused_merge_leaves_merging_with_an_event() -> None:
    ledger, events, _ = make("A")
    ledger.start("A", "")
    ledger.worked("A", worked(S.VALIDATED))
    ledger.to_lane("A")
    ledger.merge_refused("A", "the checkout refused")
    last = events[-1]
    assert isinstance(last, PrpChanged)
    assert (last.state, last.message) == (S.VALIDATED, "the checkout refused")


def test_phase_commits_only_advance() -> None:
    ledger, events, _ = make("A")
    ledger.start("A", "")
    ledger.phases_committed("A", 2, 2, "two")
    ledger.phases_committed("A", 1, 1, "one")  # an older poll: nothing
    commits = [e for e in events if isinstance(e, PhaseCommitted)]
    assert [(c.phase, c.total) for c in commits] == [(2, 3)]
    assert ledger.get("A").phases_done == 2


def test_duration_counts_only_the_time_the_batch_ran() -> None:
    ledger, _, clock = make("A")
    ledger.start("A", "")
    clock.now += 60
    ledger.worked("A", worked(S.PENDING, error="interrupted"))  # the batch was interrupted
    saved = ledger.get("A").to_json(clock.now)
    assert saved["duration_seconds"] == 60.0
    clock.now += 3 * 3600  # it sat interrupted for three hours
    resumed, _, _ = make("A")
    again = resumed.get("A")
    again.load_json(saved)
    resumed.clock = clock
    resumed.start("A", "")
    clock.now += 30
    resumed.worked("A", worked(S.FAILED))
    assert again.timing.duration(clock.now) == 90.0


def test_time_waiting_for_the_merge_lane_is_not_the_prps_own() -> None:
    """The sequential estimate sums the durations: a PRP that waited 100 s behind other merges
    (a 50-PRP batch's lane at -j4) would have waited for nobody run alone."""
    ledger, _, clock = make("A")
    ledger.start("A", "")
    clock.now += 10
    ledger.worked("A", worked(S.VALIDATED))
    clock.now += 100  # other PRPs' merges go first
    assert ledger.get("A").timing.duration(clock.now) == 10.0
    ledger.to_lane("A")
    clock.now += 2
    ledger.merged("A", "m" * 40, {})
    clock.now += 50
    assert ledger.get("A").timing.duration(clock.now) == 12.0


def test_interrupted_in_flight_leaves_nothing_running() -> None:
    ledger, _, _ = make("A", "B")
    ledger.start("A", "")
    ledger.progress("A", S.RUNNING)
    ledger.start("B", "")
    ledger.worked("B", worked(S.VALIDATED))
    ledger.to_lane("B")
    ledger.interrupted_in_flight()
    assert dict(ledger.view().states) == {"A": S.PENDING, "B": S.VALIDATED}


def test_stages_start_once_and_finish_through_their_review() -> None:
    ledger, events, _ = make("A")
    ledger.stage_started(1, ("A",))
    ledger.stage_started(1, ("A",))
    assert [e for e in events if isinstance(e, StageStarted)] == [events[0]]
    ledger.stage_finished(1, review=True)
    assert ledger.reviewing() == [1]
    with pytest.raises(IllegalTransition):
        ledger.stage_finished(1, review=False)
    assert ledger.stage_state(1) is StageState.REVIEWING


@pytest.mark.parametrize(
    "state", [S.PENDING, S.VALIDATED, S.FAILED, S.PARTIAL, S.CONFLICT, S.SKIPPED]
)
def test_a_retry_starts_an_unmerged_prp_afresh_and_names_its_kept_attempts(
    state: PrpState,
) -> None:
    ledger, events, _ = make("A")
    a = ledger.get("A")
    a.state, a.base, a.head, a.phases_done, a.error = state, "b", "h", 2, "it broke"
    ledger.retry("A", ("a-attempt-1",))
    ledger.retry("A", ("a-attempt-1", "a-attempt-2"))  # a resume re-applies: each named once
    after = ledger.get("A")
    assert (after.state, after.base, after.head, after.phases_done) == (S.PENDING, None, None, 0)
    assert after.error is None
    assert after.policy.kept == ("a-attempt-1", "a-attempt-2")
    assert isinstance(events[0], PrpChanged)
    assert events[0].message == "retry (its earlier attempt is kept on a-attempt-1)"


@pytest.mark.parametrize("state", [S.MERGED, S.RUNNING, S.MERGING])
def test_a_merged_or_running_prp_is_never_retried(state: PrpState) -> None:
    ledger, _, _ = make("A")
    ledger.get("A").state = state
    with pytest.raises(IllegalTransition):
        ledger.retry("A", ())


def test_failed_is_final_outside_a_retry() -> None:
    ledger, _, _ = make("A")
    ledger.start("A", "")
    ledger.worked("A", worked(S.FAILED, error="no"))
    with pytest.raises(IllegalTransition):
        ledger.progress("A", S.PENDING)


def test_a_start_forgets_the_judged_head_until_it_is_judged_again() -> None:
    ledger, _, _ = make("A")
    ledger.get("A").head = "h"
    ledger.start("A", "")
    assert ledger.get("A").head is None
