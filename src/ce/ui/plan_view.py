"""The plan a person reads at a glance: stages, a model per PRP, conflicts and the moves."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ce.plan.batch import BatchPlan
from ce.plan.graph import Move
from ce.prp.model import Prp, StatusClass


def render_plan(bp: BatchPlan, batch_id: str | None, console: Console) -> None:
    stages = bp.plan.stages
    name = f"Batch {escape(batch_id)}" if batch_id else "Plan"
    console.print(
        f"[bold]{name}: {_count(len(bp.prps), 'PRP')} in {_count(len(stages), 'stage')}[/]"
    )
    console.print(_stage_table(bp))
    _render_conflicts(bp, console)
    _render_moves(bp, console)
    console.print(_hours_line(bp))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _stage_table(bp: BatchPlan) -> Table:
    table = Table(box=box.HORIZONTALS, show_edge=False, padding=(0, 1, 0, 0))
    for column in ("Stage", "PRP", "Title", "Model", "Hours", "Phases"):
        table.add_column(
            column, justify="right" if column in _NUMBERS else "left", no_wrap=column != "Title"
        )
    table.add_column("Files", overflow="fold")  # a path cut short is no use: fold it whole
    for number, ids in enumerate(bp.plan.stages, start=1):
        if number > 1:
            table.add_section()
        for n, prp_id in enumerate(ids):
            table.add_row(str(number) if n == 0 else "", *_prp_cells(bp, bp.prps[prp_id]))
    return table


_NUMBERS = frozenset({"Stage", "Hours", "Phases"})


def _prp_cells(bp: BatchPlan, prp: Prp) -> tuple[str, ...]:
    return (
        escape(prp.id),
        escape(prp.title),
        "[dim]done[/]" if prp.status_class is StatusClass.DONE else bp.models[prp.id],
        _hours(prp.estimated_hours),
        str(max(prp.phase_count, 1)),
        "\n".join(escape(f) for f in prp.files) or "[dim](none declared)[/]",
    )


def _hours(hours: float | None) -> str:
    return "?" if hours is None else f"{hours:g}"


def _render_conflicts(bp: BatchPlan, console: Console) -> None:
    if not bp.plan.file_conflicts:
        return
    console.print("\n[bold]File conflicts[/] (PRPs that share a file never run in the same stage)")
    for path, ids in bp.plan.file_conflicts.items():
        console.print(f"  {escape(path)}: {escape(', '.join(ids))}")


def _render_moves(bp: BatchPlan, console: Console) -> None:
    if not bp.plan.moves:
        return
    console.print("\n[bold]Moved to a later stage[/]")
    for move in bp.plan.moves:
        console.print(f"  {escape(_move_line(bp, move))}")


def _move_line(bp: BatchPlan, move: Move) -> str:
    shared = [
        path
        for path, ids in bp.plan.file_conflicts.items()
        if move.prp in ids and any(other in ids for other in move.because)
    ]
    files = f" {', '.join(shared)}" if shared else " files"
    return (
        f"{move.prp}: stage {move.from_stage} → {move.to_stage}, "
        f"shares{files} with {', '.join(move.because)}"
    )


def _hours_line(bp: BatchPlan) -> str:
    sequential, parallel = bp.sequential_hours, bp.parallel_hours
    saved = f", {1 - parallel / sequential:.0%} less" if parallel < sequential else ""
    unknown = sum(
        1
        for p in bp.prps.values()
        if p.estimated_hours is None and p.status_class is not StatusClass.DONE
    )
    note = f"\n({_count(unknown, 'PRP')} without an estimate counted as 0)" if unknown else ""
    return (
        f"\nEstimated hours: {sequential:g} one after another, "
        f"{parallel:g} with each stage in parallel{saved}{note}"
    )
