"""The merge lane's thread: feeds the speculative line (`ce.run.speculation`) in the order the
engine sends branches, pushes after each advance, and runs the stage reviews (in the lane, once
every merge sent before is settled and before any sent after is built, so the target holds
still while it is reviewed). Results go to the engine's inbox; this thread never writes a
record."""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ce import git
from ce.run import worktree_env
from ce.run.load import BatchContext
from ce.run.merge import MergeLane, MergeOutcome, MergeRequest, MergeResult
from ce.run.review import Review, StageMerges, StageReviewer
from ce.run.speculation import Checked, LaneSettings, SpeculativeLane, Worktree
from ce.run.state import Journal, StateDir


@dataclass(frozen=True, kw_only=True)
class Merged:
    prp_id: str
    result: MergeResult
    push_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Reviewed:
    review: Review


@dataclass(frozen=True, kw_only=True)
class Upstream:
    remote: str
    branch: str


def lane_settings(ctx: BatchContext) -> LaneSettings:
    """The lane's settings from the configuration: one integration worktree (and port block)
    per merged tree checked at once."""
    env = dict(os.environ)
    worktrees = tuple(
        Worktree(path=path, env=env | worktree_env.lane_variables(ctx.worktree_settings, n))
        for n, path in enumerate(ctx.integration_worktrees())
    )
    return LaneSettings(
        parallel=ctx.merge_parallel, batch=ctx.config.lane.merge_batch, worktrees=worktrees
    )


_Item = MergeRequest | StageMerges | Checked | None


class LaneDriver:
    def __init__(
        self,
        *,
        lane: MergeLane,
        reviewer: StageReviewer,
        journal: Journal,
        repo: git.Repo,
        inbox: queue.Queue[object],
        env: Mapping[str, str],
        push_to: Upstream | None = None,
        settings: LaneSettings | None = None,
    ) -> None:
        self.lane = lane
        self.reviewer = reviewer
        self.journal = journal
        self.repo = repo
        self.inbox = inbox
        self.push_to = push_to
        self.env = env  # what merged-tree checks run with (CE_PORT_BASE)
        settings = settings or LaneSettings()
        if not settings.worktrees:
            settings = replace(settings, worktrees=(Worktree(path=lane.integration, env=env),))
        self._items: queue.Queue[_Item] = queue.Queue()
        self._waiting: deque[MergeRequest | StageMerges] = deque()
        self.line = SpeculativeLane(lane, settings, post=self._items.put, report=self._report)
        self._results: list[Merged] = []
        self._thread = threading.Thread(target=self._loop, name="ce-merge-lane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def merge(self, request: MergeRequest) -> None:
        # The merged tree's checks go to the PRP's log too: the journal's state directory has it.
        log = StateDir(root=self.journal.path.parent).log(request.prp_id)
        self._items.put(replace(request, validation_env=self.env, log=log))

    def review(self, merges: StageMerges) -> None:
        self._items.put(merges)

    def close(self) -> None:
        self._items.put(None)

    def _loop(self) -> None:
        try:
            while self._take(self._items.get()):
                while True:  # everything that arrived meanwhile, then as much as can be done
                    try:
                        if not self._take(self._items.get_nowait()):
                            return
                    except queue.Empty:
                        break
                self._progress()
        finally:
            self.line.close()

    def _take(self, item: _Item) -> bool:
        if item is None:
            return False
        if isinstance(item, Checked):
            self.line.checked(item)
        else:
            self._waiting.append(item)
        return True

    def _progress(self) -> None:
        """Feed the line up to the next stage review; run it once the line is empty."""
        while True:
            while self._waiting and isinstance(first := self._waiting[0], MergeRequest):
                self._waiting.popleft()
                self._enter(first)
            self.line.progress()
            self._flush()
            if not (self._waiting and self.line.idle()):
                return
            review = self._waiting.popleft()
            assert isinstance(review, StageMerges)
            self.inbox.put(Reviewed(review=self.reviewer.review(review)))

    def _enter(self, request: MergeRequest) -> None:
        try:
            self.journal.intent("merge", prp=request.prp_id, head=request.head)
            self.lane.recover()
            done = self.lane.already_merged(request)
        except Exception as exc:  # one merge's trouble pauses the batch, never kills the lane
            message = f"{type(exc).__name__}: {exc}"
            done = MergeResult(outcome=MergeOutcome.BLOCKED, message=message)
        if done is not None:
            self._report(request.prp_id, done)
        else:
            self.line.add(request)

    def _report(self, prp_id: str, result: MergeResult) -> None:
        self._results.append(Merged(prp_id=prp_id, result=result))

    def _flush(self) -> None:
        """The results so far to the engine; with --push, the target to its upstream first
        (once, at the last advance), git's refusal told with the last merge."""
        results, self._results = self._results, []
        tips = [m.result.tip for m in results if m.result.outcome is MergeOutcome.MERGED]
        if self.push_to is not None and tips and tips[-1] is not None:
            remote, branch = self.push_to.remote, self.push_to.branch
            self.journal.intent("push", remote=remote, branch=branch, commit=tips[-1])
            refused = self.repo.push(remote, tips[-1], branch)
            last = max(i for i, m in enumerate(results) if m.result.tip == tips[-1])
            results[last] = replace(results[last], push_error=refused)
        for message in results:
            self.inbox.put(message)
