"""What follows from a result: a worker's (validated or failed) and the lane's (merged,
conflict, the merged tree failed, the target refused to move, a review). Runs on the engine's
thread; every change goes through the ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ce.core.events import Listener, Notice, NoticeLevel, PrpState
from ce.fsio import write_atomic
from ce.run import conflicts
from ce.run.conflicts import ConflictAction
from ce.run.lane import Merged
from ce.run.ledger import Ledger, Worked
from ce.run.load import BatchContext
from ce.run.merge import MergeOutcome, MergeResult
from ce.run.reasons import Conflicted, MergeBlocked, PushRejected, ReviewFailed
from ce.run.record import PrpRecord
from ce.run.review import Review
from ce.run.state import Journal
from ce.secrets import masked_json


class Settler:
    def __init__(
        self,
        ctx: BatchContext,
        ledger: Ledger,
        journal: Journal,
        emit: Listener,
        release: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.journal = journal
        self.emit = emit
        self.release = release  # drop the refs the lane holds for a PRP

    def worked(self, prp_id: str, result: Worked, *, interrupted: bool) -> None:
        if interrupted and result.state is not PrpState.VALIDATED:
            # Judged again on --resume, never failed by the interrupt.
            result = replace(result, state=PrpState.PENDING, error="interrupted")
        self.ledger.worked(prp_id, result)

    def merged(self, message: Merged) -> bool:
        """True when the PRP is now on the target (its worktree can go)."""
        prp_id, result = message.prp_id, message.result
        integration = {f"integration_{k}": v for k, v in result.validation.items()}
        if message.push_error is not None:
            self._push_rejected(message.push_error)
        if result.outcome is MergeOutcome.MERGED:
            assert result.commit is not None
            self.ledger.merged(prp_id, result.commit, integration)
            return True
        if result.outcome is MergeOutcome.CONFLICT:
            self._conflict(self.ledger.get(prp_id), result)
        elif result.outcome is MergeOutcome.INVALID:
            error = _integration_error(result)
            self.ledger.merge_failed(prp_id, PrpState.PARTIAL, error, integration)
        else:
            self.ledger.merge_refused(prp_id, result.message)
            self.ledger.pause(MergeBlocked(prp=prp_id, message=result.message))
            self.emit(Notice(level=NoticeLevel.ERROR, prp=prp_id, message=result.message))
        return False

    def reviewed(self, review: Review) -> None:
        self.ledger.stage_reviewed(review)
        path = self.ctx.state.root / f"batch-{self.ctx.batch_id}-review-stage-{review.stage}.json"
        write_atomic(path, masked_json(review.to_json()))
        if review.passed:
            self.emit(
                Notice(level=NoticeLevel.INFO, message=f"stage {review.stage}: review PASSED")
            )
            return
        self.ledger.pause(ReviewFailed(stage=review.stage, findings=review.findings))
        self.emit(Notice(level=NoticeLevel.ERROR, message=f"stage {review.stage}: review FAILED"))

    def _push_rejected(self, reason: str) -> None:
        upstream = self.ctx.repo.upstream(self.ctx.target) or ("origin", self.ctx.target)
        remote, branch = upstream
        self.ledger.pause(PushRejected(remote=remote, branch=branch, detail=reason))
        self.emit(
            Notice(level=NoticeLevel.ERROR, message=f"push to {remote}/{branch} rejected: {reason}")
        )

    def _conflict(self, record: PrpRecord, result: MergeResult) -> None:
        files = ", ".join(result.conflicts) or "(unknown files)"
        decision = conflicts.decide(
            self.ctx.config.lane.conflict_policy,
            record.policy.used,
            continue_on_error=self.ctx.options.continue_on_error,
        )
        target, tries = self.ctx.target, f"attempt {decision.attempt} of {conflicts.MAX_TRIES}"
        if decision.action is ConflictAction.RESOLVE:
            self.emit(
                Notice(
                    level=NoticeLevel.WARNING,
                    prp=record.id,
                    message=f"conflict in {files}: its executor merges {target} and "
                    f"resolves ({tries})",
                )
            )
            self.ledger.again(record.id, "resolving", resolving=True)
            return
        if decision.action is ConflictAction.RERUN:
            self.release(record.id)  # its first attempt is kept by its renamed branch
            kept = conflicts.rerun_branch(
                self.ctx.repo,
                self.journal,
                prp_id=record.id,
                branch=record.info.branch,
                worktree=Path(record.info.worktree),
                attempt=decision.attempt,
            )
            self.emit(
                Notice(
                    level=NoticeLevel.WARNING,
                    prp=record.id,
                    message=f"conflict in {files}: running it again from {target} "
                    f"(its first attempt is kept on branch {kept})",
                )
            )
            self.ledger.again(record.id, "rerun", resolving=False)
            return
        self.ledger.merge_failed(record.id, PrpState.CONFLICT, f"merge conflict in {files}")
        if decision.action is ConflictAction.PAUSE:
            self.ledger.pause(Conflicted(prp=record.id, files=files, worktree=record.info.worktree))


def _integration_error(result: MergeResult) -> str:
    for key, level in sorted(result.validation.items()):
        if not level.passed:
            detail = level.errors[0] if level.errors else ""
            return f"the merged tree failed {key.replace('level_', 'L')}: {detail}"
    return "the merged tree failed validation"
