"""What to do after a launch ended without success: a pure rule over the typed stop reason.

A stalled agent whose session can be resumed is first nudged in that session, once, then
relaunched fresh (bounded by `retries`). A rate-limited launch is neither a failure nor a
retry: launches wait for the reset, then it goes again (bounded by MAX_RATE_LIMITED in a row).
A timeout is never retried: --timeout bounds the PRP's time, not one attempt's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ce.core.events import StopKind

# Rate-limited launches in a row before the PRP fails: each already waited for the reset time
# the agent reported, so more means the agent keeps saying "later", not that time will help.
MAX_RATE_LIMITED = 10


@dataclass(frozen=True, kw_only=True)
class Stopped:
    kind: StopKind
    message: str  # what the log and the PRP's error say
    retry_after: float | None = None  # seconds, for RATE_LIMITED


class RetryAction(enum.Enum):
    HOLD = "hold"  # hold every launch until the rate limit resets, then launch again
    NUDGE = "nudge"  # resume the agent's own session with a nudge
    RELAUNCH = "relaunch"  # a fresh launch from the first phase not committed
    GIVE_UP = "give up"


@dataclass(frozen=True, kw_only=True)
class Tries:
    """What this PRP's launches used so far (within one start)."""

    relaunched: int = 0
    nudged: bool = False
    limited: int = 0  # rate-limited launches in a row


def decide(stopped: Stopped, tries: Tries, *, retries: int, can_nudge: bool) -> RetryAction:
    if stopped.kind is StopKind.RATE_LIMITED and tries.limited < MAX_RATE_LIMITED:
        return RetryAction.HOLD
    if stopped.kind is not StopKind.STALLED:
        return RetryAction.GIVE_UP
    if can_nudge and not tries.nudged:
        return RetryAction.NUDGE
    if tries.relaunched >= retries:
        return RetryAction.GIVE_UP
    return RetryAction.RELAUNCH


def after(action: RetryAction, tries: Tries, stopped: Stopped) -> Tries:
    """The tries once `action` is taken."""
    limited = tries.limited + 1 if stopped.kind is StopKind.RATE_LIMITED else 0
    if action is RetryAction.NUDGE:
        return Tries(relaunched=tries.relaunched, nudged=True, limited=limited)
    if action is RetryAction.RELAUNCH:
        return Tries(relaunched=tries.relaunched + 1, nudged=tries.nudged, limited=limited)
    return Tries(relaunched=tries.relaunched, nudged=tries.nudged, limited=limited)


def finished_then_hung(stopped: Stopped, *, missing: bool) -> bool:
    """An agent stopped as stalled once every phase was committed finished its work and then
    hung (a CLI waiting on a child, a prompt nobody sees): its branch is judged, not failed."""
    return stopped.kind is StopKind.STALLED and not missing


def failure_reason(stopped: Stopped | None, count: int, total: int, *, committed: bool) -> str:
    """Why the PRP failed: `stalled 10m after phase 2/4`, `timed out after 60m` (its whole
    budget; the phases done are in its record), `the executor made no commit`."""
    if stopped is None:
        return "the executor made no commit"
    stalled = stopped.kind is StopKind.STALLED
    if stopped.kind is StopKind.TIMED_OUT or not (committed or stalled):
        return stopped.message
    return f"{stopped.message} after phase {count}/{total}"
