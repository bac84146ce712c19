"""Why a batch stopped short, as data. The CLI turns each into words and next steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Conflicted:
    prp: str
    files: str
    worktree: str


@dataclass(frozen=True, kw_only=True)
class MergeBlocked:
    """The target could not be moved (git's words in `message`)."""

    prp: str
    message: str


@dataclass(frozen=True, kw_only=True)
class PushRejected:
    remote: str
    branch: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class ReviewFailed:
    stage: int
    findings: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class BudgetSpent:
    budget_usd: float
    spent_usd: float


@dataclass(frozen=True, kw_only=True)
class MergesLost:
    """Merges ce made are no longer reachable from the target (someone reset or rebased it)."""

    prps: tuple[str, ...]
    target: str


Pause = Conflicted | MergeBlocked | PushRejected | ReviewFailed | MergesLost
Reason = Pause | BudgetSpent
