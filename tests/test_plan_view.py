"""The plan as a person reads it, rendered to plain text."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from ce.plan.batch import plan_batch
from ce.prp.model import Prp
from ce.ui.plan_view import render_plan
from plan_samples import make_prp, sample_batch


def rendered(prps: list[Prp], batch_id: str | None = "12") -> str:
    out = StringIO()
    render_plan(plan_batch(prps), batch_id, Console(file=out, width=100, color_system=None))
    return out.getvalue()


def line_with(text: str, output: str) -> str:
    [line] = [line for line in output.splitlines() if text in line]
    return line


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
        assert f" {hours}   " in line_with(prp_id + " ", output)
        assert line_with(prp_id + " ", output).split()[-2] == phases
    assert "src/app/config.py" in line_with("PRP-12.1.1 ", output)
    assert "tests/test_config.py" in output
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
    assert output.startswith("Plan: 4 PRPs in 2 stages\n")
    assert " done " in line_with("PRP-0 ", output)  # no model: it will not run
    assert "Alpha [bold]work[/]" in output  # titles are text, not markup
    assert "File conflicts" not in output
    assert "Moved" not in output
    assert "(none declared)" in line_with("PRP-3 ", output)
    assert " ? " in line_with("PRP-3 ", output)
    assert "Estimated hours: 5 one after another, 3 with each stage in parallel, 40% less" in output
    assert "\n(1 PRP without an estimate counted as 0)\n" in output
