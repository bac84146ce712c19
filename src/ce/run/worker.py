"""One PRP's way to the merge lane: worktree, executor (supervised, retried), validation."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from ce import fsio, git
from ce.agents.base import Assessment, ExecutorJob, Task
from ce.core import names
from ce.core.events import NoticeLevel, PrpState, StopKind
from ce.core.excerpt import reason
from ce.prp.model import Prp
from ce.run import ahead, prp_worktree, retry, worktree_env
from ce.run.ahead import Made
from ce.run.assignment import Assignment, Crewmates, resume_point
from ce.run.backends.base import Site
from ce.run.ledger import Spent, Worked
from ce.run.load import BatchContext
from ce.run.monitor import Watch, append_log
from ce.run.retry import RetryAction, Stopped
from ce.run.validate import ValidationTarget, first_failure


class Worker:
    """Runs in a pool thread; touches only its own worktree and reports to the ledger."""

    def __init__(self, crew: Crewmates, job: Assignment, made: Future[Made] | None = None) -> None:
        self.crew = crew
        self.job = job
        self.made = made  # its worktree, being made ahead (`ce.run.ahead`)
        # CE_PORT_BASE, and CE_BASE once its worktree is made
        self.extra_env = worktree_env.variables(crew.ctx.worktree_settings, job.prp.id)
        self.pgid: int | None = None
        self.deadline: float | None = None  # monotonic; --timeout is for all attempts together
        self.assessments: list[Assessment] = []
        # The branch's commits beyond the base as last read, and so its tip (None: unknown, or
        # HEAD is not beyond the base): the watch's baseline, the head to judge, L1's commits.
        self.commits: tuple[git.Commit, ...] = ()
        self.tip: str | None = None
        self.bare = False  # nothing but committed files in the worktree, as last seen
        self.place = crew.backend.place(_site(self))

    @property
    def prp(self) -> Prp:
        return self.job.prp

    @property
    def path(self) -> Path:
        return self.crew.ctx.worktree(self.job.prp.id)

    @property
    def branch(self) -> str:
        return self.crew.ctx.branch(self.job.prp.id)

    @property
    def log_path(self) -> Path:
        return self.crew.ctx.state.log(self.job.prp.id)

    def run(self, base_hint: str | None) -> Worked:
        try:
            return self._run()
        finally:
            self.place.close()  # nothing of it runs on after its PRP

    def _run(self) -> Worked:
        base, fresh = ahead.made_or_make(self.made, self.crew, self.job)  # and fenced
        # From now on the monitor counts its checkpoint commits.
        self.crew.ledger.based_on(self.prp.id, base)
        self.extra_env["CE_BASE"] = base  # what `ce validate` in the worktree compares with
        self.tip = base if fresh else None
        failure = self.place.prepare(fresh=fresh)
        if failure is not None:  # .worktreeinclude or setup
            state = PrpState.PENDING if self.crew.stopping.is_set() else PrpState.FAILED
            return Worked(state=state, base=base, head=None, phases_done=0, error=failure)
        repo = git.Repo(self.path)
        done, left_at = prp_worktree.adopted(  # an earlier run's: leftovers kept, phases done
            repo, self.prp, base, self.job.left_at, self.log_path, fresh=fresh, emit=self.crew.emit
        )
        self.job = replace(self.job, left_at=left_at)  # where the user's own commits start
        attempts, stopped, done = self._execute(repo, base, done)
        if stopped is None and self.job.resolve_with and not self.crew.stopping.is_set():
            base, stopped = self._resolve_conflict(repo, attempts + 1)
            attempts += 1
        if self.crew.stopping.is_set():  # interrupted: the work is saved, judge it on --resume
            return Worked(
                state=PrpState.PENDING,
                base=base,
                head=None,
                phases_done=len(done),
                error="interrupted",
            )
        judged = self._judge(repo, base, attempts, stopped, done)
        return replace(judged, spent=Spent(disk_bytes=worktree_env.disk_usage(self.path)))

    def _resolve_conflict(self, repo: git.Repo, attempt: int) -> tuple[str, Stopped | None]:
        """The `agent` conflict policy: the executor merges the target into its branch and
        resolves; the work is then judged from the new merge-base, like any other."""
        target = self.job.resolve_with
        assert target is not None
        tip = self.crew.ctx.repo.rev_parse(f"refs/heads/{target}")
        stopped = self._launch(resume_point(self.prp, set()) or 1, attempt, conflict_with=target)
        self.bare = self.place.save_leftovers(repo)
        error = None if stopped is None else stopped.message
        if error is None and not repo.is_ancestor(tip, "HEAD"):
            error = f"the executor did not merge {target} into the branch"
        base = repo.merge_base("HEAD", f"refs/heads/{target}")
        self.commits, self.tip = (), None  # judged from the new base: read again
        if error is None:
            return base, None
        return base, Stopped(kind=StopKind.FAILED, message=f"conflict resolution failed: {error}")

    def _phases_done(self, repo: git.Repo, base: str) -> set[int]:
        """The phases committed beyond `base`, from one `git log` (which also gives the tip:
        the last commit it lists is HEAD)."""
        self.commits = tuple(repo.commits(base, "HEAD"))
        self.tip = self.commits[-1].sha if self.commits else None
        return names.phases_done((c.subject for c in self.commits), self.prp.id)

    def _track(self, pgid: int | None) -> None:
        self.pgid = pgid  # an interrupted batch stops this process group

    def _state(self, state: PrpState, message: str = "") -> None:
        self.crew.ledger.progress(self.prp.id, state, message)

    def _execute(
        self, repo: git.Repo, base: str, done: set[int]
    ) -> tuple[int, Stopped | None, set[int]]:
        """Launch (and relaunch, as `retry.decide` says) until every phase is committed or it
        fails; the attempts used, the last error and the phases done."""
        retries = self.crew.ctx.config.monitor.retries
        tries = retry.Tries()
        attempts = 0  # a launch after a rate limit is the same attempt again
        nudge: list[str] | None = None  # the next launch resumes the agent's session
        stopped: Stopped | None = None
        relaunch = False  # its node was lost: the same attempt again, elsewhere
        while True:
            start = resume_point(self.prp, done)
            if start is None or self.crew.stopping.is_set():
                return attempts, stopped, done
            attempts += 0 if tries.limited or relaunch else 1
            stopped = self._launch(start, attempts, argv=nudge)
            self.bare = self.place.save_leftovers(repo)
            done = self._phases_done(repo, base)
            start = resume_point(self.prp, done)
            if start is None and (lost := self.place.lost()) is not None:
                append_log(self.log_path, f"{lost} after its last phase was shipped")
                stopped = None  # judged as it is, like an agent that finished
            if stopped is None or start is None or self.crew.stopping.is_set():
                return attempts, stopped, done
            relaunch = self.place.lost() is not None
            if relaunch and self.place.recover():  # its own cap, not one of the retries
                append_log(self.log_path, f"{stopped.message}; relaunched from phase {start}")
                continue
            if relaunch:
                return attempts, stopped, done
            nudge = None if tries.nudged else _nudge_argv(self, start)
            action = retry.decide(stopped, tries, retries=retries, can_nudge=nudge is not None)
            tries = retry.after(action, tries, stopped)
            if action is RetryAction.GIVE_UP:
                append_log(
                    self.log_path, f"{stopped.message}; not relaunched (attempts: {attempts})"
                )
                return attempts, stopped, done
            if action is RetryAction.HOLD:
                nudge = None
                self._hold_launches(stopped.message, stopped.retry_after or 0.0, start)
            elif action is RetryAction.NUDGE:
                message = (
                    f"{stopped.message}; resuming its session with a nudge (phase {start} next)"
                )
                self.crew.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)
            else:
                nudge = None
                again = f"attempt {tries.relaunched + 1} of {retries + 1}"
                message = f"{stopped.message}; relaunching from phase {start} ({again})"
                self.crew.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)

    def _hold_launches(self, error: str, seconds: float, start: int) -> None:
        until = self.crew.gate.hold(seconds)
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + until - time.monotonic()))
        message = (
            f"{error}: no executor launches until {at} ({seconds:.0f}s), "
            f"then it goes on from phase {start}"
        )
        self.crew.monitor.note(self.prp.id, self.log_path, NoticeLevel.WARNING, message)

    def _launch(
        self,
        start: int,
        attempt: int,
        conflict_with: str | None = None,
        argv: list[str] | None = None,
    ) -> Stopped | None:
        """One launch, supervised; its error (None: it exited 0 and its assessment is clean).

        `argv`: instead of the executor's command (a nudge); the job's log, watch and deadline
        are the same either way.
        """
        waited = self.crew.gate.wait_turn()  # staggered, and held while the agents are rate-limited
        if self.crew.stopping.is_set():
            return Stopped(kind=StopKind.INTERRUPTED, message="interrupted")
        if self.deadline is not None:  # time spent waiting is not the PRP's time
            self.deadline += waited
        job = _executor_job(self, start, conflict_with)
        argv = self.place.command(job, argv)
        # Resolving a conflict runs the executor on the merge, not on the PRP's phases.
        doing = f"from phase {start}"
        if conflict_with is not None:
            doing = f"resolving its conflict with {conflict_with}"
        fsio.append_log(self.log_path, f"\n[ce] attempt {attempt}: {' '.join(argv)} ({doing})\n")
        offset = self.log_path.stat().st_size  # what the executor writes from here is its own
        self.crew.journal.intent("launch", prp=self.prp.id, attempt=attempt, resume_from=start)
        env = job.environment() | self.extra_env
        child = self.place.spawn(job, argv, env)
        self.crew.journal.fact("launched", prp=self.prp.id, **self.place.launched(child))
        self._state(PrpState.RUNNING, f"attempt {attempt}, {doing}")
        timeout = self.crew.ctx.config.run.timeout_minutes
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + timeout * 60
        self.crew.monitor.watch(
            Watch(
                prp_id=self.prp.id,
                ref=f"refs/heads/{self.branch}",
                child=child,
                log_path=self.log_path,
                deadline=self.deadline,
                timeout_minutes=timeout,
                last_progress=now,
                tip=self.tip,  # known here: the monitor need not read it
            )
        )
        try:
            code = child.wait(None)
            assert code is not None  # wait() without a timeout returns the exit code
        finally:
            watch = self.crew.monitor.unwatch(self.prp.id)
            child.stop(self.crew.ctx.config.monitor.grace_seconds)
            self._track(None)
        self.crew.journal.fact("exited", prp=self.prp.id, code=code)
        # Assessed even when stopped: a stalled agent's output still names its session.
        assessment = self.crew.ctx.executor.assess(job, code, _read_from(self.log_path, offset))
        self.assessments.append(assessment)
        if watch is not None and watch.stopped is not None:
            return watch.stopped
        if (lost := self.place.lost()) is not None:
            return Stopped(kind=StopKind.FAILED, message=lost)
        error = assessment.error
        if error is None and code != 0:
            error = f"the executor exited with code {code} (see {self.log_path})"
        if error is None:
            return None
        limited = assessment.retry_after is not None
        kind = StopKind.RATE_LIMITED if limited else StopKind.FAILED
        return Stopped(kind=kind, message=error, retry_after=assessment.retry_after)

    def _judge(
        self, repo: git.Repo, base: str, attempts: int, stopped: Stopped | None, done: set[int]
    ) -> Worked:
        head = self.tip or repo.rev_parse("HEAD")
        numbers = [p.number for p in self.prp.phases]
        count = len(done.intersection(numbers))
        judged = Worked(
            state=PrpState.FAILED,
            base=base,
            head=head,
            phases_done=count,
            attempts=attempts,
        )
        if refused := prp_worktree.fenced_off(self.path, self.branch):  # even if it finished
            return replace(judged, error=refused)
        if head == base:
            why = retry.failure_reason(stopped, count, len(numbers), committed=False)
            return replace(judged, error=prp_worktree.unsigned(repo) or why)
        missing = [n for n in numbers if n not in done]
        if stopped is not None and retry.finished_then_hung(stopped, missing=bool(missing)):
            append_log(self.log_path, f"{stopped.message} after its last phase: judged complete")
        elif stopped is not None:
            reason = retry.failure_reason(stopped, count, len(numbers), committed=True)
            reason = prp_worktree.unsigned(repo) or reason
            return replace(judged, state=PrpState.PARTIAL, error=reason)
        if missing:
            return replace(
                judged,
                state=PrpState.PARTIAL,
                error=f"no checkpoint commit for {_phases(missing)} ({count}/{len(numbers)} done)",
            )
        validated = self._validate(judged, base, head)
        if validated.state is not PrpState.VALIDATED:
            return validated  # a kept, failing branch does not claim to be completed
        head = (
            prp_worktree.mark_completed(self.crew.ctx, self.prp, self.path, self.crew.today) or head
        )
        return replace(validated, head=head)

    def _validate(self, judged: Worked, base: str, head: str) -> Worked:
        self._state(PrpState.VALIDATING)
        target = ValidationTarget(
            worktree=self.path,
            base=base,
            head=head,
            prp=self.prp,
            prp_relpath=self.crew.ctx.relpath(self.prp),
            log=self.log_path,
            yours_from=self.job.left_at,
            commits=self.commits if head == self.tip else None,
        )
        environ = dict(os.environ) | self.extra_env
        results = self.place.validate(target, environ, bare=self.bare)
        failure = first_failure(results)
        if failure is None:
            return replace(judged, state=PrpState.VALIDATED, validation=results)
        level, failed = failure
        why = f"validation L{level} failed: {reason(failed.errors, failed.excerpt)}"
        return replace(judged, state=PrpState.PARTIAL, error=why, validation=results)


def _site(worker: Worker) -> Site:
    crew = worker.crew
    return Site(
        ctx=crew.ctx,
        prp=worker.prp,
        worktree=worker.path,
        branch=worker.branch,
        log_path=worker.log_path,
        journal=crew.journal,
        emit=crew.emit,
        on_group=worker._track,
    )


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def _validation_commands(ctx: BatchContext) -> tuple[str, ...]:
    config = ctx.config.validation
    return tuple(cmd for cmd in (config.level2, config.level3, config.level4) if cmd)


def _executor_job(worker: Worker, start: int, conflict_with: str | None = None) -> ExecutorJob:
    ctx = worker.crew.ctx
    return ExecutorJob(
        prp=worker.prp,
        prp_path=worker.prp.path.resolve(),
        repo_root=ctx.root,
        worktree=worker.path,
        branch=worker.branch,
        batch_id=ctx.batch_id,
        stage=worker.job.stage,
        resume_from=start,
        model=worker.job.model,
        scratch=ctx.state.scratch(worker.prp.id),
        validation_commands=_validation_commands(ctx),
        task=Task.resolving(conflict_with),
    )


def _phases(numbers: list[int]) -> str:
    """`phase 1`, `phases 1, 3`."""
    return f"phase{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"


def _nudge_argv(worker: Worker, start: int) -> list[str] | None:
    """The argv resuming the agent's last session with a nudge, when the executor can
    (`Resumable`, nudging on) and a session is known."""
    nudge_command = getattr(worker.crew.ctx.executor, "nudge_command", None)
    sessions = [a.session_id for a in worker.assessments if a.session_id]
    if not callable(nudge_command) or not sessions:
        return None
    argv = nudge_command(_executor_job(worker, start), sessions[-1])
    return [str(arg) for arg in argv] if argv else None
