"""Which PRPs this run owns, and where an interrupted run left them (git is the truth)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ce import proc
from ce.core.errors import CeError, NextStep, Step
from ce.core.events import Listener, Notice, NoticeLevel, PrpInfo, PrpState
from ce.core.names import merge_subject
from ce.core.outcome import BatchStatus
from ce.plan.schedule import critical_path_priority
from ce.run import checkpoint, repair, scheduler
from ce.run.checkpoint import Checkpoint, CheckpointLost
from ce.run.ledger import RETRY_FROM
from ce.run.load import BatchContext
from ce.run.record import PrpRecord
from ce.run.state import Journal


def scheduling(ctx: BatchContext) -> tuple[scheduler.PlanView, scheduler.Settings]:
    """The plan and the rules as the scheduler reads them."""
    plan = ctx.plan.plan
    dependencies = {p: ctx.prp(p).dependencies for p in plan.sorted_order}
    view = scheduler.PlanView(
        stages=plan.stages,
        dependencies=dependencies,
        shares_files=scheduler.sharing(plan.file_conflicts),
        priority=critical_path_priority(
            plan.sorted_order,
            dependencies,
            {p: ctx.prp(p).estimated_hours or 0.0 for p in plan.sorted_order},
        ),
        stage_of=plan.stage_index(),
    )
    settings = scheduler.Settings(
        eager=ctx.config.run.schedule == "eager",
        slots=ctx.config.run.max_parallel or max(1, len(plan.sorted_order)),
        continue_on_error=ctx.options.continue_on_error,
        auto_review=ctx.config.reviews.auto_review and ctx.options.batch is not None,
        batch_budget_usd=ctx.config.run.batch_budget_usd,
    )
    return view, settings


def new_record(ctx: BatchContext, prp_id: str, stage: int) -> PrpRecord:
    prp = ctx.prp(prp_id)
    info = PrpInfo(
        id=prp_id,
        title=prp.title,
        stage=stage,
        model=ctx.plan.models[prp_id],
        phases=len(prp.phases),
        branch=ctx.branch(prp_id),
        worktree=str(ctx.worktree(prp_id)),
    )
    return PrpRecord(info=info)


def select(ctx: BatchContext, stage_of: Mapping[str, int]) -> list[PrpRecord]:
    """The PRPs not done yet, of the stage asked for (or all), in plan order."""
    if ctx.options.stage is not None:
        check_earlier_stages(ctx, ctx.options.stage)
    return [
        new_record(ctx, prp_id, stage_of[prp_id])
        for prp_id in ctx.plan.plan.sorted_order
        if prp_id not in ctx.done
        and (ctx.options.stage is None or stage_of[prp_id] == ctx.options.stage)
    ]


def check_earlier_stages(ctx: BatchContext, stage: int) -> None:
    stages = ctx.plan.plan.stages
    if not 1 <= stage <= len(stages):
        raise CeError(f"--stage {stage}: the plan has stages 1 to {len(stages)}.")
    pending = [p for s in stages[: stage - 1] for p in s if p not in ctx.done]
    if pending:
        earlier = "stage 1" if stage == 2 else f"stages 1-{stage - 1}"
        raise CeError(
            f"--stage {stage} needs {earlier} done, but "
            f"{', '.join(pending)} {'is' if len(pending) == 1 else 'are'} not completed. "
            "Run the earlier stages first (or the whole batch without --stage)."
        )


def resumed(
    ctx: BatchContext,
    saved: Checkpoint,
    records: list[PrpRecord],
    stage_of: Mapping[str, int],
    find_merge: Callable[[str, str], str | None],
) -> list[PrpRecord]:
    """The records of an interrupted run, reconciled with git: merged means its merge commit
    is on the target; anything else starts again from its branch."""
    results = saved.results()
    mine = {r.id: r for r in records}
    for prp_id in results.keys() - mine.keys():
        # Marked completed by its own merge before the interruption: still this run's,
        # to clean up and to report.
        if prp_id in ctx.done and prp_id in stage_of:
            mine[prp_id] = new_record(ctx, prp_id, stage_of[prp_id])
    order = {p: n for n, p in enumerate(ctx.plan.plan.sorted_order)}
    ordered = sorted(mine.values(), key=lambda r: order[r.id])
    for record in ordered:
        if record.id in results:
            record.load_json(results[record.id].to_json())
        retried = record.id in ctx.options.retry
        saved_state = record.state
        _reconcile(ctx, record, find_merge)
        if retried and record.state is PrpState.MERGED:
            raise CeError(
                f"--retry-prp {record.id}: it is merged into {ctx.target} "
                f"({(record.merged_as or '')[:10]}): there is nothing to retry."
            )
        if retried and saved_state in RETRY_FROM:  # the ledger's retry starts from it
            record.state = saved_state
    return ordered


def _reconcile(
    ctx: BatchContext, record: PrpRecord, find_merge: Callable[[str, str], str | None]
) -> None:
    head = ctx.repo.try_rev_parse(f"refs/heads/{record.info.branch}") or record.head
    merge = None if head is None else find_merge(record.id, head)
    if merge is not None:
        record.state = PrpState.MERGED
        record.merged_as = record.merged_as or merge
    else:
        record.state = PrpState.PENDING
        record.error = None
        record.merged_as = None


def unfinished_before(ctx: BatchContext) -> bool:
    """Whether the batch's checkpoint says an earlier run is unfinished; a lost one is said so,
    with the way on (`--resume` rebuilds it)."""
    try:
        return Checkpoint.read(ctx.state.checkpoint(ctx.batch_id)).status.unfinished
    except CheckpointLost as lost:
        raise CeError(
            f"{lost} ce cannot tell how far batch {ctx.batch_id}'s earlier run got.",
            next_step=NextStep(step=Step.CHECKPOINT_LOST, batch_id=ctx.batch_id),
        ) from None


def saved_or_rebuilt(
    ctx: BatchContext, find_merge: Callable[[str, str], str | None], emit: Listener
) -> Checkpoint:
    """The checkpoint to resume from; rebuilt from the journal and git when it is lost."""
    try:
        return Checkpoint.read(ctx.state.checkpoint(ctx.batch_id))
    except CheckpointLost as lost:
        found = rebuilt(ctx, find_merge)
        if found is None:
            raise
        journal = Journal.read(ctx.state.journal(ctx.batch_id))
        sources = "the journal and git" if journal else "git"
        emit(Notice(level=NoticeLevel.WARNING, message=f"{lost} ce rebuilt it from {sources}"))
        return found


def repair_own(ctx: BatchContext, records: Iterable[PrpRecord], emit: Listener) -> None:
    """What a power cut left in the PRPs' worktrees and the integration worktree, repaired
    (`run.repair`); only once no agent of an earlier run is left in them."""
    own = [
        repair.OwnWorktree(path=Path(r.info.worktree), branch=r.info.branch, prp=r.id)
        for r in records
    ]
    integration = [repair.OwnWorktree(path=p, branch=None) for p in ctx.integration_worktrees()]
    repair.repair_worktrees(ctx.repo, [*own, *integration], emit)


def rebuilt(ctx: BatchContext, find_merge: Callable[[str, str], str | None]) -> Checkpoint | None:
    """The checkpoint of a batch whose file is lost (`git clean -fdx`) or damaged, rebuilt
    from its journal and git; None when neither knows of an earlier run.

    Its PRPs are those not done, and those done whose branch or worktree is still there or
    whose merge the journal saw (this batch merged them, and cleans up after them). Each
    record's head is its branch, or the merge on the target found by its subject; resume then
    reconciles them with git as it does any checkpoint's.
    """
    entries = Journal.read(ctx.state.journal(ctx.batch_id))
    merged = {str(e["prp"]) for e in entries if e.get("fact") == "merged"}
    bases = {str(e["prp"]): e["base"] for e in entries if e.get("fact") == "worktree"}
    tips = ctx.repo.ref_tips([f"refs/heads/{ctx.branch(p)}" for p in ctx.plan.plan.sorted_order])
    records: dict[str, PrpRecord] = {}
    stage_of = ctx.plan.plan.stage_index()
    for prp_id in ctx.plan.plan.sorted_order:
        head = tips.get(f"refs/heads/{ctx.branch(prp_id)}")
        left = head is not None or ctx.worktree(prp_id).exists()
        if prp_id in ctx.done and not (left or prp_id in merged):
            continue
        record = new_record(ctx, prp_id, stage_of[prp_id])
        record.base = bases.get(prp_id)
        record.head = head or _merged_head(ctx, prp_id)
        records[prp_id] = record
    if not entries and not any(r.head or Path(r.info.worktree).exists() for r in records.values()):
        return None
    for record in records.values():
        _reconcile(ctx, record, find_merge)
    now = time.time()
    return checkpoint.build(
        batch_id=ctx.batch_id,
        target=ctx.target,
        executor=ctx.executor.name,
        status=BatchStatus.INTERRUPTED,
        stages=ctx.plan.plan.stages,
        records=records,
        done=ctx.done - records.keys(),
        reasons=(None, None),
        started_at=float(entries[0]["t"]) if entries else now,
        elapsed_seconds=0.0,
        reviews={},
        hooks=[],
        now=now,
    )


def _merged_head(ctx: BatchContext, prp_id: str) -> str | None:
    """The PRP's head as its merge commit on the target has it (second parent)."""
    merge = ctx.repo.find_first_parent_commit(f"refs/heads/{ctx.target}", merge_subject(prp_id, ""))
    return None if merge is None else ctx.repo.try_rev_parse(f"{merge}^2")


def stop_stale_agents(ctx: BatchContext, emit: Listener) -> None:
    """Agents the dead run launched may still be working: stop them before relaunching.

    Only groups still working inside that PRP's worktree are stopped, so a reused group
    number (after a reboot) can never hit an unrelated process.
    """
    running: dict[str, int] = {}
    for entry in Journal.read(ctx.state.journal(ctx.batch_id)):
        if entry.get("fact") == "launched":
            running[str(entry["prp"])] = int(entry["pgid"])
        elif entry.get("fact") == "exited":
            running.pop(str(entry["prp"]), None)
    for prp_id, pgid in sorted(running.items()):
        if proc.group_working_in(pgid, ctx.worktree(prp_id)):
            emit(
                Notice(
                    level=NoticeLevel.WARNING,
                    prp=prp_id,
                    message=f"stopping its agent left "
                    f"running by the interrupted run (process group {pgid})",
                )
            )
            proc.kill_pgid(pgid, ctx.config.monitor.grace_seconds)
