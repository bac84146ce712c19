"""What a merge conflict leads to: the policies `pause`, `agent` and `rerun` behind one rule.

`decide` is pure (tested as data); `rerun_branch` is the one effect a policy needs beyond the
ledger: the conflicting work is kept on a renamed branch, never deleted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.core import names
from ce.core.vocab import ConflictPolicy
from ce.run.state import Journal

MAX_TRIES = 2  # `agent` resolutions or `rerun`s per PRP before the usual pause applies


class ConflictAction(enum.Enum):
    RESOLVE = "resolve"  # `agent`: its executor merges the target in its worktree and resolves
    RERUN = "rerun"  # run it again from the new target, in a fresh worktree
    SKIP = "skip"  # --continue-on-error: it ends as CONFLICT, the rest goes on
    PAUSE = "pause"  # stop the batch, keep everything, say how to resolve and resume


@dataclass(frozen=True, kw_only=True)
class Decision:
    action: ConflictAction
    attempt: int = 0  # the policy's try number, for RESOLVE and RERUN


def decide(policy: ConflictPolicy, tries_used: int, *, continue_on_error: bool) -> Decision:
    if policy != "pause" and tries_used < MAX_TRIES:
        action = ConflictAction.RERUN if policy == "rerun" else ConflictAction.RESOLVE
        return Decision(action=action, attempt=tries_used + 1)
    return Decision(action=ConflictAction.SKIP if continue_on_error else ConflictAction.PAUSE)


def rerun_branch(
    repo: git.Repo, journal: Journal, *, prp_id: str, branch: str, worktree: Path, attempt: int
) -> str:
    """Set the conflicting attempt aside for a rerun; the name of the branch that keeps it."""
    kept = names.conflict_branch(branch, attempt)
    journal.intent("rerun", prp=prp_id, kept=kept)
    repo.remove_worktree(worktree, force=True)
    repo.rename_branch(branch, kept)
    journal.fact("rerun", prp=prp_id, kept=kept)
    return kept
