"""One PRP's way to the merge lane: worktree, executor (supervised, retried), validation."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from ce import fsio, git, proc
from ce.agents.base import Assessment, ExecutorJob
from ce.core import names
from ce.core.events import Listener, Notice, NoticeLevel, PrpState
from ce.fsio import write_atomic
from ce.prp.model import Prp
from ce.prp.parse import read_prp_text
from ce.prp.write import set_status_text
from ce.run import worktree_env
from ce.run.gate import LaunchGate
from ce.run.ledger import Ledger
from ce.run.load import BatchContext
from ce.run.monitor import STALLED_PREFIX, TIMED_OUT_PREFIX, Monitor, Watch, append_log
from ce.run.record import LevelResult, add_known
from ce.run.state import Journal
from ce.run.validate import ValidationTarget, first_failure, run_levels
from ce.secrets import log_filter

WIP_SUBJECT = "{prp_id}: WIP - uncommitted work saved by ce"
# Rate-limited launches in a row before the PRP fails: each already waited for the reset time
# the agent reported, so more means the agent keeps saying "later", not that time will help.
MAX_RATE_LIMITED = 10


@dataclass(frozen=True, kw_only=True)
class WorkResult:
    prp_id: str
    state: PrpState  # VALIDATED, PARTIAL or FAILED
    base: str
    head: str | None
    phases_done: int
    error: str | None = None
    validation: dict[str, LevelResult] = field(default_factory=dict)
    attempts: int = 0
    disk_bytes: int | None = None  # the worktree's size on disk once the executor is done
    # What the executor's launches reported spending (None: nothing reported), its last session.
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None


def phases_done(repo: git.Repo, prp: Prp, base: str) -> set[int]:
    return names.phases_done((c.subject for c in repo.commits(base, "HEAD")), prp.id)


def resume_point(prp: Prp, done: set[int]) -> int | None:
    """The first phase not yet committed, in document order; None when all are done."""
    for phase in prp.phases:
        if phase.number not in done:
            return phase.number
    return None


class Worker:
    """Runs in a pool thread; touches only its own worktree and reports through events."""

    def __init__(
        self,
        ctx: BatchContext,
        prp_id: str,
        *,
        monitor: Monitor,
        journal: Journal,
        listener: Listener,
        ledger: Ledger,
        stage: int,
        model: str,
        stopping: threading.Event,
        today: date,
        may_exist: bool = True,
        gate: LaunchGate | None = None,
    ) -> None:
        self.ctx = ctx
        self.prp = ctx.prp(prp_id)
        self.monitor = monitor
        self.journal = journal
        self.emit = listener
        self.ledger = ledger
        self.stage = stage
        self.model = model
        self.stopping = stopping  # set when the batch is interrupted
        self.today = today
        self.may_exist = may_exist  # resuming: its branch and worktree may be there already
        self.path = ctx.worktree(prp_id)
        self.branch = ctx.branch(prp_id)
        self.log_path = ctx.state.log(prp_id)
        self.extra_env = worktree_env.variables(ctx, prp_id)  # CE_PORT_BASE
        self.pgid: int | None = None
        self.deadline: float | None = None  # monotonic; --timeout is for all attempts together
        self.assessments: list[Assessment] = []
        self.resolve_with: str | None = None  # set for the `agent` conflict policy
        self.gate = gate or LaunchGate(0.0)  # shared by the batch: staggering, rate limits
        self.last: Assessment | None = None  # the last launch's, when it was assessed

    def run(self, base_hint: str | None) -> WorkResult:
        base, fresh = self._ensure_worktree(base_hint)
        self.ledger.based_on(self.prp.id, base)  # from now its checkpoint commits are counted
        failure = worktree_env.prepare(
            self.ctx, self.prp, self.path, log_path=self.log_path, on_group=self._track
        )
        if failure is not None:  # .worktreeinclude or setup
            state = PrpState.PENDING if self.stopping.is_set() else PrpState.FAILED
            return WorkResult(
                prp_id=self.prp.id, state=state, base=base, head=None, phases_done=0, error=failure
            )
        repo = git.Repo(self.path)
        done: set[int] = set()
        if not fresh:  # an earlier run's worktree: keep its leftovers, skip its phases
            self._save_leftovers(repo)
            done = phases_done(repo, self.prp, base)
        attempts, error, done = self._execute(repo, base, done)
        if error is None and self.resolve_with is not None and not self.stopping.is_set():
            base, error = self._resolve_conflict(repo, attempts + 1)
            attempts += 1
        if self.stopping.is_set():  # interrupted: the work is saved, judge it on --resume
            return WorkResult(
                prp_id=self.prp.id,
                state=PrpState.PENDING,
                base=base,
                head=None,
                phases_done=len(done),
                error="interrupted",
            )
        judged = self._judge(repo, base, attempts, error, done)
        return replace(judged, disk_bytes=worktree_env.disk_usage(self.path))

    def with_usage(self, result: WorkResult) -> WorkResult:
        """`result` with what this run's launches reported spending, summed."""
        cost: float | None = None
        inputs: int | None = None
        outputs: int | None = None
        for assessment in self.assessments:
            cost = add_known(cost, assessment.cost_usd)
            inputs = add_known(inputs, assessment.input_tokens)
            outputs = add_known(outputs, assessment.output_tokens)
        sessions = [a.session_id for a in self.assessments if a.session_id]
        return replace(
            result,
            cost_usd=cost,
            input_tokens=inputs,
            output_tokens=outputs,
            session_id=sessions[-1] if sessions else None,
        )

    def _resolve_conflict(self, repo: git.Repo, attempt: int) -> tuple[str, str | None]:
        """The `agent` conflict policy: the executor merges the target into its branch and
        resolves; the work is then judged from the new merge-base, like any other."""
        target = self.resolve_with
        assert target is not None
        tip = self.ctx.repo.rev_parse(f"refs/heads/{target}")
        error = self._launch(resume_point(self.prp, set()) or 1, attempt, conflict_with=target)
        self._save_leftovers(repo)
        if error is None and not repo.is_ancestor(tip, "HEAD"):
            error = f"the executor did not merge {target} into the branch"
        base = repo.merge_base("HEAD", f"refs/heads/{target}")
        return base, None if error is None else f"conflict resolution failed: {error}"

    def _track(self, pgid: int | None) -> None:
        self.pgid = pgid  # an interrupted batch stops this process group

    def _state(self, state: PrpState, message: str = "") -> None:
        self.ledger.progress(self.prp.id, state, message)

    def _ensure_worktree(self, base_hint: str | None) -> tuple[str, bool]:
        """The worktree's base commit, and whether the worktree is new."""
        repo = self.ctx.repo
        if self.may_exist:
            self._clear_debris()
        if self.may_exist and repo.branch_exists(self.branch):
            if not self.path.exists():
                self.journal.intent("worktree", prp=self.prp.id, path=str(self.path), adopt=True)
                sparse = worktree_env.sparse_dirs(self.ctx, self.prp, f"refs/heads/{self.branch}")
                repo.add_worktree_for_branch(self.path, self.branch, sparse=sparse)
            # Not the recorded base: if the target was merged into the branch since (a conflict
            # resolved by hand), the work to judge starts from that merge.
            base = repo.merge_base(self.branch, self.ctx.target)
            assert base is not None, "a PRP branch always shares history with its target"
            self.journal.fact("worktree", prp=self.prp.id, base=base, adopted=True)
            return base, False
        base = repo.rev_parse(f"refs/heads/{self.ctx.target}")
        self.journal.intent("worktree", prp=self.prp.id, path=str(self.path), branch=self.branch)
        sparse = worktree_env.sparse_dirs(self.ctx, self.prp, base)
        repo.add_worktree(self.path, self.branch, base, sparse=sparse)
        self.journal.fact("worktree", prp=self.prp.id, base=base)
        return base, True

    def _clear_debris(self) -> None:
        """A directory without `.git` at the worktree path is what an interrupted `worktree add`
        leaves: no executor ever ran in it, so there is no work in it to keep."""
        if self.path.is_dir() and not (self.path / ".git").exists():
            self.emit(
                Notice(
                    level=NoticeLevel.INFO, prp=self.prp.id, message=f"removing debris {self.path}"
                )
            )
            shutil.rmtree(self.path)
            self.ctx.repo.prune_worktrees()

    def _save_leftovers(self, repo: git.Repo) -> None:
        """Work is never lost: whatever the executor left uncommitted becomes a checkpoint."""
        if not repo.has_changes():
            return
        sha = repo.commit_all(WIP_SUBJECT.format(prp_id=self.prp.id))
        if sha is not None:
            self.emit(
                Notice(
                    level=NoticeLevel.INFO, prp=self.prp.id, message="committed leftover changes"
                )
            )

    def _execute(
        self, repo: git.Repo, base: str, done: set[int]
    ) -> tuple[int, str | None, set[int]]:
        """Launch (and relaunch after a stall) until every phase is committed or it fails.

        A stalled agent whose session can be resumed is first nudged in that session, once,
        then relaunched fresh (bounded by `retries`). A rate-limited launch is neither a
        failure nor a retry: new launches wait for the reset, then it goes again.
        """
        retries = self.ctx.config.monitor.retries
        # A launch after a rate limit is the same attempt again: `attempts` counts the others.
        attempts = relaunched = limited = 0
        nudge: list[str] | None = None  # the next launch resumes the agent's session
        nudged = False
        error: str | None = None
        while True:
            start = resume_point(self.prp, done)
            if start is None or self.stopping.is_set():
                return attempts, error, done
            attempts += 0 if limited else 1
            error = self._launch(start, attempts, argv=nudge)
            self._save_leftovers(repo)
            done = phases_done(repo, self.prp, base)
            if error is None:
                return attempts, None, done
            start = resume_point(self.prp, done)
            if start is None or self.stopping.is_set():
                return attempts, error, done
            wait = self.last.retry_after if self.last is not None else None
            limited = limited + 1 if wait is not None else 0
            if wait is not None and limited <= MAX_RATE_LIMITED:
                self._hold_launches(error, wait, start)
                continue
            # A timeout is not retried: --timeout bounds the PRP's time, not one attempt's.
            if not error.startswith(STALLED_PREFIX):
                append_log(self.log_path, f"{error}; not relaunched (attempts: {attempts})")
                return attempts, error, done
            nudge = None if nudged else self._nudge_argv(start)
            if nudge is not None:
                nudged = True
                message = f"{error}; resuming its session with a nudge (phase {start} next)"
                self.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)
                continue
            if relaunched >= retries:
                append_log(self.log_path, f"{error}; not relaunched (attempts: {attempts})")
                return attempts, error, done
            relaunched += 1
            again = f"attempt {relaunched + 1} of {retries + 1}"
            message = f"{error}; relaunching from phase {start} ({again})"
            self.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)

    def _hold_launches(self, error: str, seconds: float, start: int) -> None:
        until = self.gate.hold(seconds)
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + until - time.monotonic()))
        message = (
            f"{error}: no executor launches until {at} ({seconds:.0f}s), "
            f"then it goes on from phase {start}"
        )
        self.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)

    def _nudge_argv(self, start: int) -> list[str] | None:
        """The argv resuming the agent's last session with a nudge, when the executor can
        (`Resumable`, nudging on) and a session is known."""
        nudge_command = getattr(self.ctx.executor, "nudge_command", None)
        sessions = [a.session_id for a in self.assessments if a.session_id]
        if not callable(nudge_command) or not sessions:
            return None
        argv = nudge_command(self._job(start), sessions[-1])
        return [str(arg) for arg in argv] if argv else None

    def _job(self, start: int, conflict_with: str | None = None) -> ExecutorJob:
        return ExecutorJob(
            prp=self.prp,
            prp_path=self.prp.path.resolve(),
            repo_root=self.ctx.root,
            worktree=self.path,
            branch=self.branch,
            batch_id=self.ctx.batch_id,
            stage=self.stage,
            resume_from=start,
            model=self.model,
            scratch=self.ctx.state.scratch(self.prp.id),
            validation_commands=_validation_commands(self.ctx),
            task="implement" if conflict_with is None else "resolve-conflict",
            conflict_with=conflict_with,
        )

    def _launch(
        self,
        start: int,
        attempt: int,
        conflict_with: str | None = None,
        argv: list[str] | None = None,
    ) -> str | None:
        """One launch, supervised; its error (None: it exited 0 and its assessment is clean).

        `argv`: instead of the executor's command (a nudge); the job's log, watch and deadline
        are the same either way.
        """
        self.last = None
        waited = self.gate.wait_turn()  # staggered, and held while the agents are rate-limited
        if self.stopping.is_set():
            return "interrupted"
        if self.deadline is not None:  # time spent waiting is not the PRP's time
            self.deadline += waited
        job = self._job(start, conflict_with)
        argv = argv or self.ctx.executor.command(job)
        fsio.append_log(
            self.log_path, f"\n[ce] attempt {attempt}: {' '.join(argv)} (from phase {start})\n"
        )
        offset = self.log_path.stat().st_size  # what the executor writes from here is its own
        self.journal.intent("launch", prp=self.prp.id, attempt=attempt, resume_from=start)
        env = job.environment() | self.extra_env
        child = proc.spawn_group(
            argv, cwd=self.path, env=env, log_path=self.log_path, output_filter=log_filter(env)
        )
        self.pgid = child.pgid
        self.journal.fact("launched", prp=self.prp.id, pid=child.pid, pgid=child.pgid)
        self._state(PrpState.RUNNING, f"attempt {attempt}, from phase {start}")
        timeout = self.ctx.config.timeout_minutes
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + timeout * 60
        self.monitor.watch(
            Watch(
                prp_id=self.prp.id,
                ref=f"refs/heads/{self.branch}",
                child=child,
                log_path=self.log_path,
                deadline=self.deadline,
                timeout_minutes=timeout,
                last_progress=now,
            )
        )
        try:
            code = child.wait(None)
            assert code is not None  # wait() without a timeout returns the exit code
        finally:
            watch = self.monitor.unwatch(self.prp.id)
            proc.stop_group(child, self.ctx.config.monitor.grace_seconds)
            self.pgid = None
        self.journal.fact("exited", prp=self.prp.id, code=code)
        # Assessed even when stopped: a stalled agent's output still names its session.
        assessment = self.ctx.executor.assess(job, code, _read_from(self.log_path, offset))
        self.assessments.append(assessment)
        if watch is not None and watch.stop_reason is not None:
            return watch.stop_reason
        self.last = assessment
        if assessment.error is not None:
            return assessment.error
        if code != 0:
            return f"the executor exited with code {code} (see {self.log_path})"
        return None

    def _judge(
        self, repo: git.Repo, base: str, attempts: int, error: str | None, done: set[int]
    ) -> WorkResult:
        head = repo.rev_parse("HEAD")
        numbers = [p.number for p in self.prp.phases]
        count = len(done.intersection(numbers))
        judged = WorkResult(
            prp_id=self.prp.id,
            state=PrpState.FAILED,
            base=base,
            head=head,
            phases_done=count,
            attempts=attempts,
        )
        if head == base:
            return replace(judged, error=_reason(error, count, len(numbers), committed=False))
        if error is not None:
            reason = _reason(error, count, len(numbers), committed=True)
            return replace(judged, state=PrpState.PARTIAL, error=reason)
        missing = [n for n in numbers if n not in done]
        if missing:
            return replace(
                judged,
                state=PrpState.PARTIAL,
                error=f"phases {', '.join(map(str, missing))} have no checkpoint commit "
                f"({count}/{len(numbers)} done)",
            )
        validated = self._validate(judged, head)
        if validated.state is not PrpState.VALIDATED:
            return validated  # a kept, failing branch does not claim to be completed
        head = self._mark_completed(repo) or head
        return replace(validated, head=head)

    def _mark_completed(self, repo: git.Repo) -> str | None:
        """`status: completed` in the PRP file, committed on the branch so that it lands
        with the merge itself: merged and marked completed are one and the same step."""
        relpath = self.ctx.relpath(self.prp)
        if relpath is None or not (self.path / relpath).is_file():
            return None  # the PRP file is not in the repository: nothing to mark
        path = self.path / relpath
        text = read_prp_text(path)
        updated = set_status_text(text, "completed", self.today, where=str(path))
        if updated == text:
            return None
        # The temporary file outside the worktree: killed midway, no stray file is left for
        # the next checkpoint commit to pick up.
        write_atomic(path, updated, temp_dir=self.ctx.state.scratch(self.prp.id))
        return repo.commit_tracked([relpath], f"{self.prp.id}: status completed")

    def _validate(self, judged: WorkResult, head: str) -> WorkResult:
        self._state(PrpState.VALIDATING)
        target = ValidationTarget(
            worktree=self.path,
            base=judged.base,
            head=head,
            prp=self.prp,
            prp_relpath=self.ctx.relpath(self.prp),
        )
        environ = dict(os.environ) | self.extra_env
        results = run_levels(target, self.ctx.config.validation, (1, 2, 3, 4), environ)
        failure = first_failure(results)
        if failure is None:
            return replace(judged, state=PrpState.VALIDATED, validation=results)
        level, failed = failure
        why = f"validation L{level} failed: {failed.errors[0] if failed.errors else ''}"
        return replace(judged, state=PrpState.PARTIAL, error=why, validation=results)


def _reason(error: str | None, count: int, total: int, *, committed: bool) -> str:
    """Why the PRP failed: `stalled 10m after phase 2/4`, `timed out after 60m` (its whole
    budget; the phases done are in its record), `the executor made no commit`."""
    if error is None:
        return "the executor made no commit"
    if error.startswith(TIMED_OUT_PREFIX) or not (committed or error.startswith(STALLED_PREFIX)):
        return error
    return f"{error} after phase {count}/{total}"


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def _validation_commands(ctx: BatchContext) -> tuple[str, ...]:
    config = ctx.config.validation
    return tuple(cmd for cmd in (config.level2, config.level3, config.level4) if cmd)
