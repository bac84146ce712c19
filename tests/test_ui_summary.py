"""The end-of-run summary a person reads: real timings, cost, copyable next steps."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from ce.core.outcome import Summary
from ce.ui.summary import render_summary
from ui_samples import finished_board, paused_board, summary_of


def rendered(summary: Summary, width: int = 80) -> list[str]:
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


def test_timings_and_cost_are_the_real_ones() -> None:
    lines = rendered(summary_of(finished_board(), "COMPLETED"))

    assert lines[1] == "Batch 43: COMPLETED"
    assert "Time elapsed: 3m 26s  (sequential estimate: 5m 24s, saved 1m 58s = 36%)" in lines
    assert "Agent cost: $0.25" in lines


def test_next_steps_are_never_wrapped_so_they_can_be_copied() -> None:
    summary = summary_of(paused_board(), "PAUSED")
    report = "/a/long/path/" + "x" * 90 + "/batch-43-report.html"
    steps = (*summary.guidance.next_steps, f"Read the report: {report}")
    summary = replace(summary, guidance=replace(summary.guidance, next_steps=steps))

    lines = rendered(summary, width=60)

    assert f"  - Read the report: {report}" in lines
    assert "  /work/repo-PRP-43.2.2" in lines
    assert "  - Continue the batch: ce batch-exe --batch 43 --resume" in lines
