"""The merge lane's thread: merges one branch at a time, pushes, and runs the stage reviews
(in the lane, so the target holds still while it is reviewed). Results go to the engine's inbox;
this thread never writes a record."""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ce import git
from ce.run.merge import MergeLane, MergeOutcome, MergeRequest, MergeResult
from ce.run.review import Review, StageMerges, StageReviewer
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


class LaneDriver:
    def __init__(
        self,
        *,
        lane: MergeLane,
        reviewer: StageReviewer,
        journal: Journal,
        repo: git.Repo,
        inbox: queue.Queue[object],
        push_to: Upstream | None,
        env: Mapping[str, str],
    ) -> None:
        self.lane = lane
        self.reviewer = reviewer
        self.journal = journal
        self.repo = repo
        self.inbox = inbox
        self.push_to = push_to
        self.env = env  # what merged-tree checks run with (CE_PORT_BASE)
        self._requests: queue.Queue[MergeRequest | StageMerges | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="ce-merge-lane", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def merge(self, request: MergeRequest) -> None:
        # The merged tree's checks go to the PRP's log too: the journal's state directory has it.
        log = StateDir(root=self.journal.path.parent).log(request.prp_id)
        self._requests.put(replace(request, validation_env=self.env, log=log))

    def review(self, merges: StageMerges) -> None:
        self._requests.put(merges)

    def close(self) -> None:
        self._requests.put(None)

    def _loop(self) -> None:
        while (request := self._requests.get()) is not None:
            if isinstance(request, StageMerges):
                self.inbox.put(Reviewed(review=self.reviewer.review(request)))
            else:
                self.inbox.put(self._merge(request))

    def _merge(self, request: MergeRequest) -> Merged:
        try:
            self.journal.intent("merge", prp=request.prp_id, head=request.head)
            result = self.lane.merge(request)
        except Exception as exc:  # one merge's trouble pauses the batch, never kills the lane
            result = MergeResult(
                outcome=MergeOutcome.BLOCKED, message=f"{type(exc).__name__}: {exc}"
            )
        pushed = self._push(result) if result.outcome is MergeOutcome.MERGED else None
        return Merged(prp_id=request.prp_id, result=result, push_error=pushed)

    def _push(self, result: MergeResult) -> str | None:
        """After each merge: the target to its upstream, when --push; git's refusal or None."""
        if self.push_to is None or result.tip is None:
            return None
        remote, branch = self.push_to.remote, self.push_to.branch
        self.journal.intent("push", remote=remote, branch=branch, commit=result.tip)
        return self.repo.push(remote, result.tip, branch)
