"""The end-of-run summary a person reads, rendered from the typed `Summary`."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from ce.core.durations import format_duration
from ce.core.events import PrpState
from ce.core.outcome import (
    Bucket,
    LevelOutcome,
    PrpOutcome,
    StageOutcome,
    Summary,
    Totals,
    Usage,
)

_MARK = {
    PrpState.MERGED: "[green]✓[/]",
    PrpState.PARTIAL: "[yellow]⚠[/]",
    PrpState.CONFLICT: "[yellow]⚠[/]",
    PrpState.FAILED: "[red]✗[/]",
    PrpState.SKIPPED: "[dim]-[/]",
}
# Every finished bucket is always printed; an unfinished one only when a PRP is in it.
_FINISHED = (
    ("Completed", Bucket.COMPLETED),
    ("Partial", Bucket.PARTIAL),
    ("Conflict", Bucket.CONFLICT),
    ("Failed", Bucket.FAILED),
    ("Skipped", Bucket.SKIPPED),
)
_UNFINISHED = (
    ("Waiting", Bucket.WAITING),
    ("In progress", Bucket.IN_PROGRESS),
    ("Not started", Bucket.NOT_STARTED),
)


def render_summary(summary: Summary, console: Console) -> None:
    console.print()
    console.print(f"[bold]Batch {escape(summary.batch_id)}: {summary.status.value}[/]")
    for line in totals_lines(summary.totals):
        console.print(line)
    console.print(_timing_line(summary))
    cost = summary.usage.cost_usd
    if cost is not None:
        console.print(f"Agent cost: ${cost:.2f}{_tokens(summary.usage)}")
    console.print("\nStage breakdown:")
    for line in stage_lines(summary.stages):
        console.print(line)
    console.print("\nValidation results:")
    for prp in summary.prps:
        # Output lines are printed unwrapped too: a test id cut in two cannot be searched for.
        first, *more = _validation_lines(prp)
        console.print(f"  {escape(prp.id)}: {first}", soft_wrap=True)
        for line in more:
            console.print(f"      {line}", soft_wrap=True)
    guidance = summary.guidance
    # Paths and commands are printed unwrapped so they can be copied from the terminal.
    if guidance.kept_worktrees or guidance.kept_branches:
        console.print("\nKept for inspection:")
        for path in guidance.kept_worktrees:
            console.print(f"  {escape(path)}", soft_wrap=True)
        for branch in guidance.kept_branches:
            console.print(f"  branch {escape(branch)} (an earlier attempt)", soft_wrap=True)
    console.print("\nNext steps:")
    for step in guidance.next_steps:
        console.print("  - " + escape(step).replace("\n", "\n    "), soft_wrap=True)


def stage_lines(stages: Iterable[StageOutcome]) -> list[str]:
    """A line per stage with PRPs in this run; consecutive stages without any in one line
    (`Stages 1-8: (done earlier)`): a batch mostly done is not a page of empty stages."""
    lines: list[str] = []
    idle: list[tuple[int, str]] = []  # the current run of stages alike without a PRP here
    for stage in (*stages, None):
        why = None if stage is None or stage.prps else _idle(stage)
        if idle and why != idle[-1][1]:
            first, last = idle[0][0], idle[-1][0]
            span = f"s {first}-{last}" if last > first else f" {first}"
            lines.append(f"  Stage{span}: [dim]{idle[0][1]}[/]")
            idle = []
        if stage is not None and why is not None:
            idle.append((stage.stage, why))
        elif stage is not None:
            items = ", ".join(f"{_MARK.get(p.state, '·')} {escape(p.id)}" for p in stage.prps)
            parallel = " (parallel)" if len(stage.prps) > 1 else ""
            lines.append(f"  Stage {stage.stage}: {items}{parallel}")
    return lines


def _idle(stage: StageOutcome) -> str:
    return "(done earlier)" if stage.done_before else "(not in this run)"


def totals_lines(totals: Totals) -> list[str]:
    """`Total PRPs: 5  Completed: 2  …`, then the unfinished buckets that hold a PRP."""
    done = "  ".join(f"{label}: {totals.count(bucket)}" for label, bucket in _FINISHED)
    lines = [f"Total PRPs: {totals.total}  {done}"]
    unfinished = [(label, totals.count(bucket)) for label, bucket in _UNFINISHED]
    if any(count for _label, count in unfinished):
        lines.append("  ".join(f"{label}: {count}" for label, count in unfinished if count))
    return lines


def _timing_line(summary: Summary) -> str:
    timing = summary.timing
    elapsed, sequential = timing.elapsed_seconds, timing.sequential_seconds
    line = (
        f"Time elapsed: {format_duration(elapsed)}  "
        f"(sequential estimate: {format_duration(sequential)}"
    )
    if sequential > elapsed > 0:
        saved = format_duration(timing.saved_seconds)
        return f"{line}, saved {saved} = {timing.time_saved_percent:.0f}%)"
    return line + ")"


def _tokens(usage: Usage) -> str:
    inputs, outputs = usage.input_tokens, usage.output_tokens
    if inputs is None or outputs is None:
        return ""
    return f" ({inputs:,} tokens in, {outputs:,} out)"


def _level_note(level: LevelOutcome) -> str:
    """A level that passed with something to say: skipped, or what it did not check."""
    said = f"{level.name} skipped" if level.skipped else level.name
    return f"{said}: {level.errors[0]}" if level.errors else said


def _validation_lines(prp: PrpOutcome) -> list[str]:
    """The verdict; for each failed check (a few at most) what failed and the lines of its
    output that matter, then where the whole output is."""
    if prp.state is PrpState.MERGED:
        notes = [_level_note(level) for level in prp.validation if level.skipped or level.errors]
        note = f" ({'; '.join(notes)})" if notes else ""
        return [f"[green]✓ All levels passed[/]{escape(note)}"]
    lines: list[str] = []
    for level in prp.failed_checks:
        what, *output = level.why() or ("",)
        heading = f"[yellow]⚠ {level.name} failed[/]: {escape(what)}".rstrip(": ")
        lines += [heading, *(f"  {escape(line)}" for line in output)]
    if any(level.command for level in prp.failed_checks):
        lines.append(f"  [dim]the whole output: ce logs {escape(prp.id)}[/]")
    if lines:
        return lines
    mark = _MARK.get(prp.state, "·")
    return [f"{mark} {prp.state.value} {escape(prp.error or '')}".rstrip()]
