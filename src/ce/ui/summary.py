"""The end-of-run summary a person reads (rendered from the summary data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from ce.core.durations import format_duration

_MARK = {
    "merged": "[green]✓[/]",
    "partial": "[yellow]⚠[/]",
    "conflict": "[yellow]⚠[/]",
    "failed": "[red]✗[/]",
    "skipped": "[dim]-[/]",
}


def render_summary(summary: dict[str, Any], console: Console) -> None:
    totals = summary["totals"]
    console.print()
    console.print(f"[bold]Batch {escape(summary['batch_id'])}: {summary['status']}[/]")
    console.print(
        f"Total PRPs: {totals['total']}  Completed: {totals['completed']}  "
        f"Partial: {totals['partial'] + totals['conflict']}  Failed: {totals['failed']}  "
        f"Skipped: {totals['skipped']}  Not started: {totals['not_started']}"
    )
    console.print(_timing_line(summary))
    cost = total_cost(summary)
    if cost is not None:
        console.print(f"Agent cost: ${cost:.2f}{_tokens(summary.get('usage') or {})}")
    console.print("\nStage breakdown:")
    for stage in summary["stages"]:
        items = ", ".join(
            f"{_MARK.get(p['state'], '·')} {escape(p['id'])}" for p in stage["prps"]
        ) or ("[dim](done earlier)[/]" if stage.get("done_before") else "[dim](not in this run)[/]")
        parallel = " (parallel)" if len(stage["prps"]) > 1 else ""
        console.print(f"  Stage {stage['stage']}: {items}{parallel}")
    console.print("\nValidation results:")
    for prp_id, prp in summary["prps"].items():
        console.print(f"  {escape(prp_id)}: {_validation_line(prp)}")
    # Paths and commands are printed unwrapped so they can be copied from the terminal.
    if summary["kept_worktrees"]:
        console.print("\nKept for inspection:")
        for path in summary["kept_worktrees"]:
            console.print(f"  {escape(path)}", soft_wrap=True)
    console.print("\nNext steps:")
    for step in summary["next_steps"]:
        console.print("  - " + escape(step).replace("\n", "\n    "), soft_wrap=True)


def _timing_line(summary: dict[str, Any]) -> str:
    elapsed, sequential = summary["elapsed_seconds"], summary["sequential_seconds"]
    line = (
        f"Time elapsed: {format_duration(elapsed)}  "
        f"(sequential estimate: {format_duration(sequential)}"
    )
    if sequential > elapsed > 0:
        saved = format_duration(sequential - elapsed)
        return f"{line}, saved {saved} = {summary['time_saved_percent']:.0f}%)"
    return line + ")"


def total_cost(summary: Mapping[str, Any]) -> float | None:
    """What the agents reported spending, or None when none reported anything."""
    costs = [p.get("cost_usd") for p in summary["prps"].values()]
    known = [float(c) for c in costs if isinstance(c, int | float)]
    return sum(known) if known else None


def _tokens(usage: Mapping[str, Any]) -> str:
    inputs, outputs = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(inputs, int) or not isinstance(outputs, int):
        return ""
    return f" ({inputs:,} tokens in, {outputs:,} out)"


def _validation_line(prp: dict[str, Any]) -> str:
    results = prp["validation_results"]
    failed = [(key, value) for key, value in sorted(results.items()) if not value["passed"]]
    if prp["state"] == "merged":
        skipped = [k for k, v in sorted(results.items()) if v["skipped"]]
        note = f" ({', '.join(_level(k) for k in skipped)} skipped)" if skipped else ""
        return f"[green]✓ All levels passed[/]{note}"
    if failed:
        key, value = failed[0]
        detail = value["errors"][0] if value["errors"] else ""
        return f"[yellow]⚠ {_level(key)} failed[/] {escape(detail)}"
    return f"{_MARK.get(prp['state'], '·')} {prp['state']} {escape(prp['error'] or '')}"


def _level(key: str) -> str:
    return key.replace("integration_level_", "merged L").replace("level_", "L")
