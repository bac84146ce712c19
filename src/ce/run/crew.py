"""The PRPs in flight: one pool thread per PRP running its `Worker`, their process groups (to
stop them all on Ctrl-C), and the phases the monitor sees them commit."""

from __future__ import annotations

import contextlib
import queue
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from ce import fsio, git, proc
from ce.agents.base import Assessment
from ce.core import names
from ce.core.errors import CeError
from ce.core.events import Listener, Notice, NoticeLevel, PrpState
from ce.run.ahead import Ahead
from ce.run.assignment import Assignment, Crewmates
from ce.run.backends import open_backend
from ce.run.gate import LaunchGate
from ce.run.ledger import Ledger, Spent, Worked
from ce.run.load import BatchContext
from ce.run.monitor import Monitor
from ce.run.record import add_known
from ce.run.state import Journal
from ce.run.worker import Worker


@dataclass(frozen=True, kw_only=True)
class WorkDone:
    prp_id: str
    result: Worked


class Crew:
    def __init__(
        self,
        ctx: BatchContext,
        *,
        ledger: Ledger,
        journal: Journal,
        emit: Listener,
        gate: LaunchGate,
        inbox: queue.Queue[object],
        slots: int,
        today: date | None,
    ) -> None:
        self.ctx, self.ledger, self.emit, self.inbox = ctx, ledger, emit, inbox
        self.stopping = threading.Event()  # set when the batch is interrupted
        self.monitor = Monitor(ctx.repo, ctx.config.monitor, emit, self.on_tip)
        self.backend = open_backend(ctx)
        self.mates = Crewmates(
            ctx=ctx,
            monitor=self.monitor,
            journal=journal,
            emit=emit,
            ledger=ledger,
            stopping=self.stopping,
            gate=gate,
            today=today or date.today(),
            backend=self.backend,
        )
        self.pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="ce-prp")
        self._workers: dict[str, Worker] = {}  # process handles to stop, not PRP state
        self.ahead = Ahead(ctx, journal, emit)  # worktrees made before their PRP starts

    def prepare(self, prp_id: str) -> None:
        """Every slot is taken: `prp_id`'s worktree is made meanwhile (`ce.run.ahead`)."""
        self.ahead.prepare(prp_id, may_exist=self._may_exist(prp_id))

    def start(self, prp_id: str, stage: int) -> None:
        record = self.ledger.get(prp_id)
        resolving = self.ledger.take_resolving(prp_id)
        job = Assignment(
            prp=self.ctx.prp(prp_id),
            stage=stage,
            model=record.info.model,
            may_exist=self._may_exist(prp_id),
            resolve_with=self.ctx.target if resolving else None,
            left_at=record.head if self.ctx.options.resume and not resolving else None,
        )
        worker = Worker(self.mates, job, made=self.ahead.take(prp_id))
        self._workers[prp_id] = worker
        self.ledger.start(prp_id, f"worktree {worker.path}")
        self.pool.submit(self._work, worker, record.base)

    def _may_exist(self, prp_id: str) -> bool:
        """Resuming, or run before: its branch and worktree may be there already."""
        return self.ctx.options.resume or self.ledger.get(prp_id).attempts > 0

    def done(self, prp_id: str) -> None:
        self._workers.pop(prp_id, None)

    def _work(self, worker: Worker, base: str | None) -> None:
        try:
            result = worker.run(base)
        except Exception as exc:  # a failure of this PRP must not take the batch down
            with contextlib.suppress(OSError):
                fsio.append_log(worker.log_path, "".join(traceback.format_exception(exc)))
            result = Worked(
                state=PrpState.FAILED,
                base=base,
                head=None,
                phases_done=0,
                error=_reason(exc, worker.log_path),
            )
        self.inbox.put(
            WorkDone(prp_id=worker.prp.id, result=with_usage(result, worker.assessments))
        )

    def stop_all(self) -> None:
        """Interrupted: every agent's process group at once (SIGTERM, grace, SIGKILL)."""
        self.stopping.set()
        self.mates.gate.close()  # workers waiting for their turn to launch give up at once
        grace = self.ctx.config.monitor.grace_seconds
        groups = [w.pgid for w in list(self._workers.values()) if w.pgid is not None]
        checks = proc.running_checks()
        if groups or checks:
            what = f"{len(groups)} agent(s) and {checks} check(s)"
            self.emit(Notice(level=NoticeLevel.WARNING, message=f"stopping {what}"))
        stoppers = [
            threading.Thread(target=proc.kill_pgid, args=(pgid, grace), daemon=True)
            for pgid in groups
        ]
        stoppers.append(threading.Thread(target=proc.stop_checks, args=(grace,), daemon=True))
        stoppers += [
            threading.Thread(target=w.place.interrupt, args=(grace,), daemon=True)
            for w in list(self._workers.values())
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def close(self, *, interrupted: bool) -> None:
        # Interrupted: workers save what their agents left and return; nothing else runs.
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.ahead.close(interrupted=interrupted)
        self.monitor.close()
        self.backend.close()

    def on_tip(self, prp_id: str, tip: str) -> None:
        """A branch moved (monitor thread): the checkpoint commits it brought."""
        base = self.ledger.get(prp_id).base if prp_id in self.ledger else None
        if base is None:
            return
        try:
            commits = self.ctx.repo.commits(base, tip)
        except git.GitError:
            return
        parsed = (names.parse_checkpoint(c.subject) for c in commits)
        done = {p.phase: p.title for p in parsed if p is not None and p.prp_id == prp_id}
        if done:
            last = max(done)
            self.ledger.phases_committed(prp_id, len(done), last, done[last])


def _reason(exc: Exception, log: Path) -> str:
    """A failure's reason in words: what the system said for an OSError or the environment
    (a directory gone), else a bug in ce."""
    if isinstance(exc, CeError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"ce could not go on with it: {exc.strerror or exc}{where}"
    return f"a bug in ce stopped it ({type(exc).__name__}: {exc}); the traceback is in {log}"


def with_usage(result: Worked, assessments: list[Assessment]) -> Worked:
    """`result` with what its launches reported spending, summed."""
    cost: float | None = None
    inputs: int | None = None
    outputs: int | None = None
    for assessment in assessments:
        cost = add_known(cost, assessment.cost_usd)
        inputs = add_known(inputs, assessment.input_tokens)
        outputs = add_known(outputs, assessment.output_tokens)
    sessions = [a.session_id for a in assessments if a.session_id]
    spent = Spent(
        cost_usd=cost,
        input_tokens=inputs,
        output_tokens=outputs,
        session_id=sessions[-1] if sessions else None,
        disk_bytes=result.spent.disk_bytes,
    )
    return replace(result, spent=spent)
