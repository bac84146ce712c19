"""The plan as a person reads it, rendered to plain text."""

from __future__ import annotations

import re
from io import StringIO

from rich.console import Console

from ce.plan.batch import plan_batch
from ce.plan.dry_run import DryRun
from ce.prp.model import Prp
from ce.ui.plan_view import render_plan
from plan_samples import make_prp, sample_batch


def rendered(prps: list[Prp], batch_id: str | None = "12") -> str:
    out = StringIO()
    dry = DryRun(plan=plan_batch(prps), batch_id=batch_id)
    render_plan(dry, Console(file=out, width=100, color_system=None))
    return out.getvalue()


def line_with(text: str, output: str) -> str:
    """The first line holding `text` (the stage table's, for a PRP id)."""
    return next(line for line in output.splitlines() if text in line)


def test_sample_plan() -> None:
    output = rendered(sample_batch())
    assert output.startswith("Batch 12: 4 PRPs in 4 stages\n")
    for stage, prp_id, model, hours, phases in [
        ("1", "PRP-12.1.1", "sonnet", "2", "2"),
        ("2", "PRP-12.2.1", "opus", "5", "3"),
        ("3", "PRP-12.2.2", "sonnet", "1.5", "2"),
        ("4", "PRP-12.3.1", "sonnet", "36", "2"),
    ]:
        assert line_with(prp_id + " ", output).split()[:2] == [stage, prp_id]
        assert f" {model} " in line_with(prp_id + " ", output)
        assert re.search(rf" {re.escape(hours)}\s+{phases}\s", line_with(prp_id + " ", output))
    assert "  PRP-12.1.1  src/app/config.py\n              tests/test_config.py\n" in output
    assert line_with("PRP-12.2.1 ", output).split()[-1] == "PRP-12.1.1"  # its dependency
    assert "File conflicts" in output
    assert "  src/app/__init__.py: PRP-12.2.1, PRP-12.2.2\n" in output
    assert "  PRP-12.2.2: stage 2 → 3, shares src/app/__init__.py with PRP-12.2.1\n" in output
    assert "Estimated hours: 44.5 one after another, 44.5 with each stage in parallel\n" in output


def test_parallel_plan_without_conflicts() -> None:
    output = rendered(
        [
            make_prp("PRP-1", hours=2, files=("a.py",), title="Alpha [bold]work[/]"),
            make_prp("PRP-2", hours=3, files=("b.py",)),
            make_prp("PRP-3", deps=("PRP-1",)),
            make_prp("PRP-0", hours=7, status="completed"),
        ],
        batch_id=None,
    )
    assert output.startswith("Plan: 3 PRPs to run in 2 stages, 1 done already\n")
    # Done: listed apart, not in a stage (it does not run).
    done = "\nDone already (not run; they satisfy dependencies)\n"
    done += "  PRP-0  Title of PRP-0 (completed)\n"
    assert done in output
    assert " done " not in output.split("\n", 1)[1]
    assert "Alpha [bold]work[/]" in output  # titles are text, not markup
    assert "File conflicts" not in output
    assert "Moved" not in output
    assert "  PRP-3  (none declared: drift not checked)\n" in output
    assert " ? " in line_with("PRP-3 ", output)
    assert "Estimated hours: 5 one after another, 3 with each stage in parallel, 40% less" in output
    assert "\n(1 PRP without an estimate counted as 0)\n" in output
