"""`ce demo`: try ce on a throwaway repository."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from ce.cli import batch
from ce.cli.hints import ce_invocation
from ce.demo import BATCH_ID, make_demo_repo
from ce.run.load import RunOptions, load


@click.command("demo", short_help="Run a 5-PRP demo batch in a throwaway repository.")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    help="Create the demo repository under this directory (default: the system temp dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="Print errors and the summary only.")
def demo(parent: Path | None, as_json: bool, quiet: bool) -> int:
    """Create a throwaway repository with a 5-PRP, 3-stage batch and run it.

    The batch uses the built-in script executor (each PRP's `bash run` blocks), a file conflict
    the planner serializes, and a validation command that runs the demo's unit tests.
    """
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    root = make_demo_repo(parent)
    console = Console(stderr=True)
    console.print(f"Demo repository: [bold]{escape(str(root))}[/]", soft_wrap=True)
    context = load(RunOptions(batch=BATCH_ID), root)
    code = batch.run_context(context, as_json=as_json, quiet=quiet)
    ce = ce_invocation(root)
    console.print(
        f"\nThe result is in {escape(str(root))}:\n"
        f"  cd {escape(str(root))} && git log --oneline --graph\n"
        f"  {escape(ce)} batch-exe --batch {BATCH_ID} --dry-run   # the plan it followed\n"
        f"Remove it when done: rm -rf {escape(str(root.parent))}",
        soft_wrap=True,  # paths are copied from here: never broken across lines
    )
    return code


COMMANDS: list[click.Command] = [demo]
