"""The speculative merge lane (issue 17 item 1): while the line's head is checked, the groups
after it are built on its tip and checked too, each in its own integration worktree, up to
`merge_parallel` at once; `merge_batch` branches make one group (one check, one advance).

The rules are `ce.run.speculate`'s; this drives them with git. The target still moves strictly
in order, by one compare-and-swap per group, and only to a tree that passed on exactly the base
it moves from. Nothing here is a fact until its compare-and-swap: a killed run leaves only
commits held under `refs/ce/` and integration worktrees, and resume builds them again.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from ce import fsio
from ce.proc import CheckScope, checks_within
from ce.run import speculate
from ce.run.merge import (
    MAX_RACES,
    Built,
    Landed,
    MergeLane,
    MergeOutcome,
    MergeRequest,
    MergeResult,
)
from ce.run.record import LevelResult
from ce.run.speculate import Check, Slot
from ce.run.validate import first_failure


@dataclass(frozen=True, kw_only=True)
class Worktree:
    """An integration worktree the lane checks merged trees in, and what its checks run with
    (its own CE_PORT_BASE)."""

    path: Path
    env: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class LaneSettings:
    """How the lane checks merged trees: how many at once, how many branches per tree, and
    the integration worktrees it checks them in."""

    parallel: int = 1
    batch: int = 1
    worktrees: tuple[Worktree, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Checked:
    """A check finished (posted from its thread to the lane's)."""

    key: int
    worktree: Worktree
    validation: dict[str, LevelResult] = field(default_factory=dict)
    error: str | None = None


@dataclass(kw_only=True)
class _Candidate:
    key: int
    built: Built
    slot: Slot
    validation: dict[str, LevelResult] = field(default_factory=dict)
    error: str | None = None  # the check itself broke
    scope: CheckScope | None = None  # its check's commands, while it runs


Report = Callable[[str, MergeResult], None]
_KEYS = itertools.count()  # each candidate's, to know a discarded one's result
_DISCARDED_GRACE_SECONDS = 5.0  # a discarded check's commands: SIGTERM, then this, SIGKILL


class SpeculativeLane:
    """The line of groups being checked; lives on the lane's thread (checks run in a pool
    and post `Checked` back through `post`)."""

    def __init__(
        self,
        lane: MergeLane,
        settings: LaneSettings,
        *,
        post: Callable[[Checked], None],
        report: Report,
    ) -> None:
        self.lane = lane
        parallel = max(1, min(settings.parallel, len(settings.worktrees)))
        self.settings = replace(settings, parallel=parallel, batch=max(1, settings.batch))
        self.free = list(settings.worktrees)
        self.post = post
        self.report = report  # each PRP's result, in merge order
        self.line: list[_Candidate] = []
        self.again: deque[tuple[MergeRequest, ...]] = deque()  # discarded: built again first
        self.queued: deque[MergeRequest] = deque()
        self.failed_trees: dict[str, dict[str, LevelResult]] = {}
        self._tip: str | None = None  # where the target is, as the lane last saw or left it
        self._races = 0
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="ce-check")

    def add(self, request: MergeRequest) -> None:
        self.queued.append(request)

    def idle(self) -> bool:
        """Nothing to merge, and no check running (a discarded one may still be finishing in
        an integration worktree a stage review would use)."""
        busy = len(self.free) < len(self.settings.worktrees)
        return not (self.line or self.again or self.queued or busy)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def progress(self) -> None:
        """Everything that can be done without waiting for a check."""
        while self._settle_head() or self._build_next():
            pass

    # -- the head -----------------------------------------------------------------------------

    def _settle_head(self) -> bool:
        decision = speculate.head([c.slot for c in self.line])
        if decision is None or decision is speculate.Head.WAIT:
            return False
        head = self.line[0]
        if decision is speculate.Head.REJECT:
            self.line.pop(0)
            self._reject(head)
            return True
        validation = dict.fromkeys(head.built.prps, head.validation)
        try:
            landed = self.lane.land(head.built, validation)
        except Exception as exc:  # one group's trouble pauses the batch, never kills the lane
            landed = Landed(moved=False, results=self._blocked(head.built.prps, exc))
        if landed.moved:
            self.line.pop(0)
            self._tip, self._races = head.built.tip, 0
            self._send(head.built.prps, landed.results)
            return True
        self._tip = None  # read again: the user moved it, or it refused to move
        if landed.moved is False or self._races >= MAX_RACES:
            self.line.pop(0)
            self._races = 0
            self._send(head.built.prps, landed.results or self._kept_moving(head.built))
        else:
            self._races += 1
        self._discard(speculate.after_move([c.slot for c in self.line]))
        return True

    @staticmethod
    def _blocked(prps: tuple[str, ...], exc: Exception) -> tuple[MergeResult, ...]:
        message = f"{type(exc).__name__}: {exc}"
        return tuple(MergeResult(outcome=MergeOutcome.BLOCKED, message=message) for _ in prps)

    def _kept_moving(self, built: Built) -> tuple[MergeResult, ...]:
        return tuple(
            MergeResult(outcome=MergeOutcome.BLOCKED, message=self.lane.kept_moving(prp))
            for prp in built.prps
        )

    def _reject(self, head: _Candidate) -> None:
        built = head.built
        prp = built.prps[0]
        if head.slot.check is Check.CONFLICT:
            self.report(prp, self.lane.conflict_result(built))
        elif head.error is not None:
            self.report(prp, MergeResult(outcome=MergeOutcome.BLOCKED, message=head.error))
        else:
            self.report(prp, self.lane.invalid_result(built, head.validation))

    def _send(self, prps: tuple[str, ...], results: Sequence[MergeResult]) -> None:
        for prp, result in zip(prps, results, strict=True):
            self.report(prp, result)

    # -- building -----------------------------------------------------------------------------

    def _build_next(self) -> bool:
        slots = [c.slot for c in self.line]
        if not (self.again or self.queued) or not speculate.room(slots, self.settings.parallel):
            return False
        if self.lane.has_tree_checks and not self.free:
            return False  # every worktree is busy (a discarded check is finishing)
        group = self.again.popleft() if self.again else self._take_queued()
        under = speculate.base_of_next(slots)
        try:
            base = self._target() if under is None else self.line[under].built.tip
            built = self.lane.build(group, base)
        except Exception as exc:  # one group's trouble pauses the batch, never kills the lane
            prps = tuple(r.prp_id for r in group)
            self._send(prps, self._blocked(prps, exc))
            return True
        self._place(built)
        return True

    def _take_queued(self) -> tuple[MergeRequest, ...]:
        group: list[MergeRequest] = []
        while self.queued and len(group) < self.settings.batch:
            group.append(self.queued.popleft())
        return tuple(group)

    def _target(self) -> str:
        if self._tip is None:
            self._tip = self.lane.target_tip()
        return self._tip

    def _place(self, built: Built) -> None:
        candidate = _Candidate(key=next(_KEYS), built=built, slot=Slot(prps=built.prps))
        self.line.append(candidate)
        if built.conflict is not None:
            self._result(
                candidate, Slot(prps=built.prps, check=Check.CONFLICT, culprit=built.conflict)
            )
        elif built.tree in self.failed_trees:  # bisection meets a tree already failed
            candidate.validation = self.failed_trees[built.tree]
            self._result(candidate, speculate.result(candidate.slot, passed=False))
        elif not self.lane.needs_check(built):
            self._result(candidate, speculate.result(candidate.slot, passed=True))
        else:
            worktree = self.free.pop(0)
            candidate.scope = CheckScope()
            self._pool.submit(self._check, candidate.key, built, worktree, candidate.scope)

    def _check(self, key: int, built: Built, worktree: Worktree, scope: CheckScope) -> None:
        try:
            with checks_within(scope):
                validation = self.lane.check(built, worktree.path, worktree.env)
        except Exception as exc:  # reported as the group's failure, never kills the lane
            self.post(Checked(key=key, worktree=worktree, error=f"{type(exc).__name__}: {exc}"))
            return
        self.post(Checked(key=key, worktree=worktree, validation=validation))

    def checked(self, done: Checked) -> None:
        """A check's result, on the lane's thread: discarded if its candidate was."""
        self.free.append(done.worktree)
        self.free.sort(key=lambda w: str(w.path))  # the same worktree for the same place
        found = [c for c in self.line if c.key == done.key]
        if not found:
            return
        candidate = found[0]
        candidate.scope = None
        candidate.validation, candidate.error = done.validation, done.error
        passed = done.error is None and first_failure(done.validation) is None
        if not passed and done.error is None and candidate.built.tree is not None:
            self.failed_trees[candidate.built.tree] = done.validation
        self._result(candidate, speculate.result(candidate.slot, passed=passed))

    def _result(self, candidate: _Candidate, slot: Slot) -> None:
        index = self.line.index(candidate)
        rebuild = speculate.after_result([c.slot for c in self.line], index, slot)
        candidate.slot = slot
        self._discard(rebuild)

    def _discard(self, rebuild: speculate.Rebuild) -> None:
        """Cut the line to what stays; the groups discarded are built again first."""
        requests = {r.prp_id: r for c in self.line for r in c.built.requests}
        for cut in self.line[rebuild.keep :]:
            self._stop_check(cut)
        self.line = self.line[: rebuild.keep]
        groups = [tuple(requests[p] for p in group) for group in rebuild.groups]
        self.again.extendleft(reversed(groups))

    @staticmethod
    def _stop_check(candidate: _Candidate) -> None:
        """A discarded candidate's check is not waited for: its commands are stopped, so its
        worktree is free for what is built again (its result, when posted, is dropped)."""
        if candidate.scope is None:
            return
        candidate.scope.stop(_DISCARDED_GRACE_SECONDS)
        candidate.scope = None
        log = candidate.built.requests[-1].log
        if log is not None:
            fsio.append_log(
                log,
                f"[ce] check of the merged tree {candidate.built.tree or ''} stopped: the merge "
                "it was built on changed; it is built again and checked on the new base\n",
            )
