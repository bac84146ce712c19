"""A batch told as engine events, and its summary data, for the board and report tests.

Batch 43: stage 1 merges PRP-43.1.1; in stage 2 PRP-43.2.1 merges, PRP-43.2.2 fails validation
and PRP-43.2.3 conflicts, which pauses the batch before stage 3 (PRP-43.3.1) starts. The titles
carry markup, HTML and a terminal escape, as user input may.
"""

from __future__ import annotations

from pathlib import Path

from ce.core.events import (
    BatchFinished,
    BatchStarted,
    Event,
    Health,
    HealthChanged,
    LaneStep,
    MergeStep,
    Notice,
    NoticeLevel,
    PhaseCommitted,
    PrpChanged,
    PrpInfo,
    PrpState,
    StageFinished,
    StageStarted,
)
from ce.core.outcome import (
    BatchStatus,
    BatchTiming,
    Commits,
    Guidance,
    LevelOutcome,
    PrpOutcome,
    PrpUsage,
    StageEntry,
    StageOutcome,
    Summary,
    Timing,
    Totals,
    Usage,
)
from ce.ui.board import BoardState, PrpRow, fold

T0 = 1_700_000_000.0
TITLES = {
    "PRP-43.1.1": 'Config <parser> & "loader"',
    "PRP-43.2.1": "Cache layer [bold]fast[/bold]",
    "PRP-43.2.2": "<script>alert('x')</script> API",
    "PRP-43.2.3": "Docs\x1b[31m index",
    "PRP-43.3.1": "Release notes",
}
STAGES = (("PRP-43.1.1",), ("PRP-43.2.1", "PRP-43.2.2", "PRP-43.2.3"), ("PRP-43.3.1",))
PHASES = {"PRP-43.1.1": 3, "PRP-43.2.1": 2, "PRP-43.2.2": 1, "PRP-43.2.3": 2, "PRP-43.3.1": 1}
MODELS = {"PRP-43.1.1": "sonnet", "PRP-43.2.1": "haiku", "PRP-43.2.3": "haiku"}


def info(prp_id: str) -> PrpInfo:
    stage = next(n for n, ids in enumerate(STAGES, start=1) if prp_id in ids)
    return PrpInfo(
        id=prp_id,
        title=TITLES[prp_id],
        stage=stage,
        model=MODELS.get(prp_id, "opus"),
        phases=PHASES[prp_id],
        branch=f"prp-{prp_id[4:].replace('.', '-')}",
        worktree=f"/work/repo-prp-{prp_id[4:]}",
    )


def changed(at: float, prp: str, state: PrpState, message: str = "") -> PrpChanged:
    return PrpChanged(at=T0 + at, prp=prp, state=state, message=message)


def committed(at: float, prp: str, phase: int) -> PhaseCommitted:
    return PhaseCommitted(
        at=T0 + at, prp=prp, phase=phase, total=PHASES[prp], title=f"Step {phase}"
    )


def merged(at: float, prp: str) -> list[Event]:
    return [
        changed(at, prp, PrpState.MERGING),
        MergeStep(at=T0 + at + 1, prp=prp, step=LaneStep.MERGE_TREE, detail="onto 1234567890"),
        MergeStep(at=T0 + at + 2, prp=prp, step=LaneStep.VALIDATE, detail="tree abcdef1234"),
        MergeStep(at=T0 + at + 8, prp=prp, step=LaneStep.ADVANCE, detail="main → 0987654321"),
        MergeStep(at=T0 + at + 9, prp=prp, step=LaneStep.MERGED, detail="0987654321"),
        changed(at + 9, prp, PrpState.MERGED),
    ]


def worked(start: float, prp: str, commits: list[tuple[float, int]]) -> list[Event]:
    events: list[Event] = [
        changed(start, prp, PrpState.PREPARING, "worktree"),
        changed(start + 2, prp, PrpState.RUNNING, "attempt 1, from phase 1"),
    ]
    events += [committed(at, prp, phase) for at, phase in commits]
    return events


def stage_one() -> list[Event]:
    return [
        BatchStarted(
            at=T0,
            batch_id="43",
            executor="script",
            stages=STAGES,
            prps=tuple(info(p) for ids in STAGES for p in ids),
        ),
        StageStarted(at=T0, stage=1, prps=STAGES[0]),
        *worked(0, "PRP-43.1.1", [(20, 1), (45, 2), (70, 3)]),
        changed(72, "PRP-43.1.1", PrpState.VALIDATING),
        changed(80, "PRP-43.1.1", PrpState.VALIDATED, "validated"),
        *merged(80, "PRP-43.1.1"),
        StageFinished(at=T0 + 89, stage=1),
    ]


def stage_two_running() -> list[Event]:
    """Stage 2 at T0+120: two PRPs working (one of them idle for a while), one validating."""
    return [
        StageStarted(at=T0 + 92, stage=2, prps=STAGES[1]),
        *worked(92, "PRP-43.2.1", [(110, 1)]),
        *worked(93, "PRP-43.2.2", []),
        HealthChanged(at=T0 + 118, prp="PRP-43.2.2", health=Health.WARNING, idle_seconds=301),
        *worked(94, "PRP-43.2.3", [(115, 2)]),
        changed(116, "PRP-43.2.3", PrpState.VALIDATING),
        Notice(
            at=T0 + 117,
            level=NoticeLevel.INFO,
            prp="PRP-43.2.3",
            message="committed leftover changes",
        ),
    ]


def stage_two_end() -> list[Event]:
    return [
        committed(140, "PRP-43.2.1", 2),
        changed(141, "PRP-43.2.1", PrpState.VALIDATING),
        changed(150, "PRP-43.2.2", PrpState.PARTIAL, "validation L3 failed: 2 tests failed"),
        changed(150, "PRP-43.2.3", PrpState.VALIDATED, "validated"),
        changed(155, "PRP-43.2.1", PrpState.VALIDATED, "validated"),
        *merged(156, "PRP-43.2.1"),
        changed(166, "PRP-43.2.3", PrpState.MERGING),
        MergeStep(
            at=T0 + 167, prp="PRP-43.2.3", step=LaneStep.MERGE_TREE, detail="onto 0987654321"
        ),
        MergeStep(at=T0 + 168, prp="PRP-43.2.3", step=LaneStep.CONFLICT, detail="docs/index.md"),
        changed(168, "PRP-43.2.3", PrpState.CONFLICT, "merge conflict in docs/index.md"),
        Notice(
            at=T0 + 168,
            level=NoticeLevel.ERROR,
            prp="PRP-43.2.3",
            message="merge conflict in docs/index.md",
        ),
        BatchFinished(at=T0 + 170, status="paused"),
    ]


def running_board() -> BoardState:
    return fold([*stage_one(), *stage_two_running()])


def paused_board() -> BoardState:
    return fold([*stage_one(), *stage_two_running(), *stage_two_end()])


def finished_board() -> BoardState:
    """Every PRP merged: stage 2 and 3 go well."""
    events: list[Event] = [*stage_one(), StageStarted(at=T0 + 92, stage=2, prps=STAGES[1])]
    events += worked(92, "PRP-43.2.1", [(110, 1), (130, 2)])
    events += worked(93, "PRP-43.2.2", [(125, 1)])
    events += worked(94, "PRP-43.2.3", [(115, 2)])
    for prp_id, at in (("PRP-43.2.1", 140), ("PRP-43.2.2", 152), ("PRP-43.2.3", 164)):
        events += [changed(at - 10, prp_id, PrpState.VALIDATING)]
        events += [changed(at - 4, prp_id, PrpState.VALIDATED), *merged(at, prp_id)]
    events += [
        StageFinished(at=T0 + 173, stage=2),
        StageStarted(at=T0 + 174, stage=3, prps=STAGES[2]),
    ]
    events += worked(174, "PRP-43.3.1", [(190, 1)])
    events += [changed(191, "PRP-43.3.1", PrpState.VALIDATING)]
    events += [changed(196, "PRP-43.3.1", PrpState.VALIDATED), *merged(196, "PRP-43.3.1")]
    events += [StageFinished(at=T0 + 205, stage=3), BatchFinished(at=T0 + 206, status="completed")]
    return fold(events)


def _levels(failed: int | None = None) -> tuple[LevelOutcome, ...]:
    return tuple(
        LevelOutcome(
            key=f"level_{level}",
            passed=level != failed,
            skipped=level == 4,
            errors=("2 tests failed: test_api <b>boom</b>",) if level == failed else (),
        )
        for level in (1, 2, 3, 4)
    )


def summary_of(board: BoardState, status: str) -> Summary:
    """The summary the engine would build for this board (as `build_summary` does)."""
    prps = tuple(_prp(row) for row in board.rows)
    elapsed = (board.finished_at or 0) - (board.started_at or 0)
    sequential = sum(p.timing.duration_seconds or 0 for p in prps)
    states = {p.id: p.state for p in prps}
    costs = [p.usage.cost_usd for p in prps if p.usage.cost_usd is not None]
    return Summary(
        batch_id=board.batch_id,
        status=BatchStatus(status),
        target="main",
        totals=Totals.of(states.values()),
        usage=Usage(cost_usd=sum(costs) if costs else None),
        timing=BatchTiming(
            elapsed_seconds=elapsed,
            sequential_seconds=sequential,
            time_saved_percent=round(100 * (1 - elapsed / sequential), 1),
        ),
        stages=tuple(
            StageOutcome(stage=n, prps=tuple(StageEntry(id=p, state=states[p]) for p in ids))
            for n, ids in enumerate(STAGES, start=1)
        ),
        prps=prps,
        guidance=Guidance(
            pause_reason=None if status == "COMPLETED" else "PRP-43.2.3 conflicts with main",
            kept_worktrees=tuple(p.info.worktree for p in prps if p.state is not PrpState.MERGED),
            next_steps=("Continue the batch: ce batch-exe --batch 43 --resume",),
        ),
        checkpoint=Path("/work/repo/.ce/tmp/batch-execution-43.json"),
    )


def _prp(row: PrpRow) -> PrpOutcome:
    failed = 3 if row.state is PrpState.PARTIAL else None
    ran = row.state not in (PrpState.PENDING,)
    duration = (row.finished_at - row.started_at) if row.finished_at and row.started_at else None
    return PrpOutcome(
        info=PrpInfo(
            id=row.id,
            title=row.title,
            stage=row.stage,
            model=row.model,
            phases=row.phases_total,
            branch=f"prp-{row.id}",
            worktree=f"/work/repo-{row.id}",
        ),
        state=row.state,
        status="completed" if row.state is PrpState.MERGED else row.state.value,
        phases_done=row.phases_done,
        attempts=1 if ran else 0,
        commits=Commits(
            base="1234567890",
            head="abcdef1234" if ran else None,
            merged_as="0987654321" if row.state is PrpState.MERGED else None,
        ),
        timing=Timing(
            started_at=row.started_at, finished_at=row.finished_at, duration_seconds=duration
        ),
        validation=_levels(failed) if ran else (),
        usage=PrpUsage(cost_usd=0.25 if row.id == "PRP-43.1.1" else None),
        error=row.message if row.state in (PrpState.PARTIAL, PrpState.CONFLICT) else None,
    )
