"""The errors `ce` raises on purpose; anything else reaching the top level is a bug.

Which exit code each means, and the words of the next step an error carries (`ce batch-exe …
--resume`, `ce cleanup …`), are the CLI's (`ce.cli`, `ce.cli.hints`): the error carries the
step as data.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Step(enum.Enum):
    RESUME_OR_CLEANUP = "resume or cleanup"  # an earlier run of the batch is unfinished
    LEFT_BEHIND = "left behind"  # branches or worktrees of an earlier run are there
    WAIT_OR_RESUME = "wait or resume"  # another ce runs in this repository
    CHECKPOINT_LOST = "checkpoint lost"  # missing or damaged: --resume rebuilds it


class NextStep(NamedTuple):  # not a dataclass: see ce.plan.graph.Plan
    step: Step
    batch_id: str | None = None  # None: the PRPs were named, not a batch


class CeError(Exception):
    """The user's mistake or environment: the message says what, where and how to fix it.

    Raised before anything is changed (exit 2).
    """

    def __init__(self, message: str, *, next_step: NextStep | None = None) -> None:
        super().__init__(message)
        self.next_step = next_step


class CeFailure(Exception):
    """Work that was attempted and failed (a git command, a merge): exit 1."""
