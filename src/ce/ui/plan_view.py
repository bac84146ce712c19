"""The dry run a person reads before a night's run: the stages of what will run, a model per
PRP, their dependencies and files, who runs them, the checks their work must pass, and whether a
real run would start. Lines wrap between words only: a path or an id is never cut."""

from __future__ import annotations

import textwrap

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ce.plan.batch import BatchPlan
from ce.plan.dry_run import DryRun, PlannedCheck
from ce.plan.graph import Move
from ce.prp.model import Prp, StatusClass


def render_plan(dry: DryRun, console: Console) -> None:
    bp = dry.plan
    to_run = dry.plan.to_run(dry.stage)
    console.print(f"[bold]{_headline(dry, to_run)}[/]")
    if dry.executor:
        console.print(f"Executor: {escape(dry.executor)}")
    if to_run:
        console.print(_stage_table(bp, to_run))
    _render_done(bp, console)
    _render_files(bp, [p for _, ids in to_run for p in ids], console)
    _render_conflicts(bp, console)
    _render_moves(bp, console)
    _render_checks(dry, console)
    console.print(_hours_line(bp))
    _render_readiness(dry, console)


def _headline(dry: DryRun, to_run: tuple[tuple[int, tuple[str, ...]], ...]) -> str:
    name = f"Batch {escape(dry.batch_id)}" if dry.batch_id else "Plan"
    done = len(dry.plan.done)
    count = sum(len(ids) for _, ids in to_run)
    if not count:
        return f"{name}: nothing to run" + (f", {_count(done, 'PRP')} done already" if done else "")
    where = f"stage {dry.stage}" if dry.stage is not None else _count(len(to_run), "stage")
    if not done:
        return f"{name}: {_count(count, 'PRP')} in {where}"
    return f"{name}: {_count(count, 'PRP')} to run in {where}, {done} done already"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _stage_table(bp: BatchPlan, to_run: tuple[tuple[int, tuple[str, ...]], ...]) -> Table:
    table = Table(box=box.HORIZONTALS, show_edge=False, padding=(0, 1, 0, 0))
    widest = max([len(p) for p in bp.prps] + [3])
    for column in ("Stage", "PRP", "Title", "Model", "Hours", "Phases", "Depends on"):
        table.add_column(
            column,
            justify="right" if column in _NUMBERS else "left",
            no_wrap=column not in ("Title", "Depends on"),
            min_width=widest if column in ("PRP", "Depends on") else None,
        )
    for n, (number, ids) in enumerate(to_run):
        if n:
            table.add_section()
        for i, prp_id in enumerate(ids):
            table.add_row(str(number) if i == 0 else "", *_prp_cells(bp, bp.prps[prp_id]))
    return table


_NUMBERS = frozenset({"Stage", "Hours", "Phases"})


def _prp_cells(bp: BatchPlan, prp: Prp) -> tuple[str, ...]:
    return (
        escape(prp.id),
        escape(prp.title),
        bp.models[prp.id],
        _hours(prp.estimated_hours),
        str(max(prp.phase_count, 1)),
        escape(", ".join(prp.dependencies)) or "[dim]-[/]",
    )


def _hours(hours: float | None) -> str:
    return "?" if hours is None else f"{hours:g}"


def _render_done(bp: BatchPlan, console: Console) -> None:
    if not bp.done:
        return
    console.print("\n[bold]Done already[/] (not run; they satisfy dependencies)")
    for prp_id in bp.done:
        prp = bp.prps[prp_id]
        _words(console, f"  {prp_id}  {prp.title} ({prp.status})")


def _render_files(bp: BatchPlan, ids: list[str], console: Console) -> None:
    if not ids:
        return
    console.print("\n[bold]Files[/] each PRP declares")
    width = max(len(p) for p in ids)
    for prp_id in ids:
        files = bp.prps[prp_id].files or ("(none declared: drift not checked)",)
        for n, path in enumerate(files):
            # One path a line, never wrapped: a path cut in two cannot be copied.
            label = prp_id if n == 0 else ""
            console.print(Text(f"  {label:<{width}}  {path}"), soft_wrap=True)


def _render_conflicts(bp: BatchPlan, console: Console) -> None:
    if not bp.plan.file_conflicts:
        return
    console.print("\n[bold]File conflicts[/] (PRPs that share a file never run in the same stage)")
    for path, ids in bp.plan.file_conflicts.items():
        _words(console, f"  {path}: {', '.join(ids)}")


def _render_moves(bp: BatchPlan, console: Console) -> None:
    if not bp.plan.moves:
        return
    console.print("\n[bold]Moved to a later stage[/]")
    for move in bp.plan.moves:
        _words(console, f"  {_move_line(bp, move)}")


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


def _render_checks(dry: DryRun, console: Console) -> None:
    """The checks most PRPs share, once; then where a PRP's differ (its own `validation:`)."""
    if not dry.checks:
        return
    common: list[PlannedCheck] = []
    for level in {check.level: None for checks in dry.checks.values() for check in checks}:
        found = [c for checks in dry.checks.values() for c in checks if c.level == level]
        # The most frequent; on a tie the repository's own over a PRP's override.
        common.append(max(found, key=lambda c: (found.count(c), c.source != "prp")))
    console.print("\n[bold]Validation[/] of each PRP's work:")
    for check in common:
        _words(console, f"  {_check_line(check)}", indent=5)
    for prp_id, checks in dry.checks.items():
        for check in checks:
            if check not in common:
                _words(console, f"  {prp_id}: {_check_line(check)}", indent=5)


def _check_line(check: PlannedCheck) -> str:
    parts = [check.builtin] if check.builtin else []
    if check.command is not None:
        origin = {"detected": " (detected)", "prp": " (its own `validation:`)"}
        parts.append(f"`{check.command}`{origin.get(check.source, '')}")
    if not parts:
        parts = ["nothing (no test command configured or found)" if check.level == 3 else "nothing"]
    return f"L{check.level} {'; '.join(parts)}"


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


def _render_readiness(dry: DryRun, console: Console) -> None:
    if not dry.problems:
        console.print("\nReady: a real run would start now.")
        return
    console.print(f"\n[bold yellow]A real run would not start[/] (exit {dry.exit_code}):")
    for problem in dry.problems:
        for n, line in enumerate(problem.splitlines()):
            _words(console, f"  {'warning: ' if n == 0 else '  '}{line}", indent=4)


def _words(console: Console, line: str, indent: int = 4) -> None:
    """`line` wrapped between words only, its continuation lines indented; a word longer than
    the terminal (a long path) stays whole."""
    lead = line[: len(line) - len(line.lstrip(" "))]
    lines = textwrap.wrap(
        line.strip(),
        width=max(console.width, 40),
        initial_indent=lead,
        subsequent_indent=" " * indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    for part in lines:
        console.print(Text(part), soft_wrap=True)
