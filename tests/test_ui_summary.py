"""The end-of-run summary a person reads: real timings, cost, copyable next steps."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from ce.core.events import PrpState
from ce.core.outcome import StageEntry, StageOutcome, Summary
from ce.ui.summary import render_summary, stage_lines
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


def test_stages_without_prps_in_this_run_share_a_line_per_run_of_them() -> None:
    def stage(n: int, *, ran: bool = False, done: bool = False) -> StageOutcome:
        prps = (StageEntry(id=f"PRP-{n}", state=PrpState.MERGED),) if ran else ()
        return StageOutcome(stage=n, prps=prps, done_before=(f"PRP-{n}.0",) if done else ())

    stages = [stage(1, done=True), stage(2, done=True), stage(3), stage(4, ran=True)]
    stages += [stage(5, done=True), stage(6), stage(7)]

    assert stage_lines(stages) == [
        "  Stages 1-2: [dim](done earlier)[/]",
        "  Stage 3: [dim](not in this run)[/]",
        "  Stage 4: [green]✓[/] PRP-4",
        "  Stage 5: [dim](done earlier)[/]",
        "  Stages 6-7: [dim](not in this run)[/]",
    ]
