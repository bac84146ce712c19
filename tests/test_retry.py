"""The retry rule as data: a typed stop reason and the tries so far in, the next move out."""

from __future__ import annotations

import pytest

from ce.core.events import StopKind
from ce.run import retry
from ce.run.retry import MAX_RATE_LIMITED, RetryAction, Stopped, Tries

STALLED = Stopped(kind=StopKind.STALLED, message="stalled 10m")
LIMITED = Stopped(kind=StopKind.RATE_LIMITED, message="rate limited", retry_after=30.0)

CASES = [
    ("a stall with a resumable session: nudge first", STALLED, Tries(), 1, True, RetryAction.NUDGE),
    (
        "a stall, nudged already: relaunch",
        STALLED,
        Tries(nudged=True),
        1,
        True,
        RetryAction.RELAUNCH,
    ),
    ("a stall without a session: relaunch", STALLED, Tries(), 1, False, RetryAction.RELAUNCH),
    ("a stall, retries used: give up", STALLED, Tries(relaunched=1), 1, False, RetryAction.GIVE_UP),
    ("retries = 0: a stall gives up", STALLED, Tries(), 0, False, RetryAction.GIVE_UP),
    (
        "a timeout is never retried",
        Stopped(kind=StopKind.TIMED_OUT, message="t"),
        Tries(),
        3,
        True,
        RetryAction.GIVE_UP,
    ),
    (
        "an error is not retried",
        Stopped(kind=StopKind.FAILED, message="e"),
        Tries(),
        3,
        True,
        RetryAction.GIVE_UP,
    ),
    (
        "interrupted: give up (the work is judged on --resume)",
        Stopped(kind=StopKind.INTERRUPTED, message="i"),
        Tries(),
        3,
        True,
        RetryAction.GIVE_UP,
    ),
    (
        "a rate limit holds launches, no retry used",
        LIMITED,
        Tries(relaunched=1),
        1,
        True,
        RetryAction.HOLD,
    ),
    (
        "the last rate limit allowed still holds",
        LIMITED,
        Tries(limited=MAX_RATE_LIMITED - 1),
        1,
        True,
        RetryAction.HOLD,
    ),
    (
        "rate-limited too often in a row: give up",
        LIMITED,
        Tries(limited=MAX_RATE_LIMITED),
        1,
        True,
        RetryAction.GIVE_UP,
    ),
]


@pytest.mark.parametrize(
    ("name", "stopped", "tries", "retries", "can_nudge", "action"), CASES, ids=[c[0] for c in CASES]
)
def test_decide(  # noqa: PLR0917 (parametrized)
    name: str, stopped: Stopped, tries: Tries, retries: int, can_nudge: bool, action: RetryAction
) -> None:
    assert retry.decide(stopped, tries, retries=retries, can_nudge=can_nudge) is action


def test_tries_count_what_was_taken() -> None:
    tries = retry.after(RetryAction.HOLD, Tries(), LIMITED)
    assert tries == Tries(limited=1)
    tries = retry.after(RetryAction.NUDGE, tries, STALLED)
    assert tries == Tries(nudged=True)  # a launch that was not rate-limited ends the run of them
    tries = retry.after(RetryAction.RELAUNCH, tries, STALLED)
    assert tries == Tries(relaunched=1, nudged=True)


@pytest.mark.parametrize(
    ("kind", "missing", "judged"),
    [
        (StopKind.STALLED, False, True),  # every phase committed, then hung
        (StopKind.STALLED, True, False),
        (StopKind.TIMED_OUT, False, False),  # --timeout bounds the PRP whatever it did
        (StopKind.FAILED, False, False),
    ],
)
def test_only_a_stall_after_the_last_phase_is_judged_complete(
    kind: StopKind, missing: bool, judged: bool
) -> None:
    stopped = Stopped(kind=kind, message=kind.value)
    assert retry.finished_then_hung(stopped, missing=missing) is judged
