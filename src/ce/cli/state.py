"""`ce status` and `ce cleanup`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ce.run.inspect import BatchStatusView, batch_status, checkpoints, cleanup_batch
from ce.run.load import open_repository
from ce.run.state import StateDir
from ce.ui.summary import duration


@click.command("status")
@click.option("--batch", "batch_id", metavar="N", help="Only this batch (default: every batch).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(batch_id: str | None, as_json: bool) -> int:
    """Where each batch stands: per PRP its state, phases, branch, worktree and last commit."""
    repo, root = open_repository(Path.cwd())
    views = [batch_status(repo, path) for path in checkpoints(StateDir.of(root), batch_id)]
    if as_json:
        click.echo(json.dumps([v.to_json() for v in views], indent=2))
        return 0
    if not views:
        click.echo("No batch has been run in this repository.")
    console = Console()
    for view in views:
        _render(view, console)
    return 0


def _render(view: BatchStatusView, console: Console) -> None:
    console.print(f"[bold]Batch {escape(view.batch_id)}[/]: {view.status} (target {view.target})")
    table = Table(box=None, pad_edge=False)
    for column in ("PRP", "state", "phases", "branch", "worktree", "last commit", "merged as"):
        table.add_column(column)
    for prp in view.prps:
        table.add_row(
            escape(prp.id),
            prp.state,
            f"{prp.phases_done}/{prp.phases_total}",
            escape(prp.branch) if prp.branch_exists else "[dim]-[/]",
            escape(prp.worktree) if prp.worktree_exists else "[dim]-[/]",
            "-" if prp.last_commit_age is None else f"{duration(prp.last_commit_age)} ago",
            (prp.merged_as or "")[:10],
        )
    console.print(table)
    if view.pause_reason:
        console.print(f"[yellow]Paused:[/] {escape(view.pause_reason)}")


@click.command("cleanup")
@click.option("--batch", "batch_id", metavar="N", help="Only this batch (default: every batch).")
@click.option("--force", is_flag=True, help="Also delete branches with unmerged commits.")
def cleanup(batch_id: str | None, force: bool) -> int:
    """Remove what a batch left behind: worktrees, branches and its state files.

    Branches holding commits that are not on the target are kept unless --force.
    """
    repo, root = open_repository(Path.cwd())
    state = StateDir.of(root)
    refused = False
    for path in checkpoints(state, batch_id):
        report = cleanup_batch(repo, state, path, force=force)
        for item in report.removed_worktrees:
            click.echo(f"removed worktree {item}")
        for item in report.deleted_branches:
            click.echo(f"deleted branch {item}")
        for item in report.removed_files:
            click.echo(f"removed {item}")
        for item in report.refused:
            click.echo(f"kept {item}; use --force to delete it", err=True)
            refused = True
    return 1 if refused else 0


COMMANDS: list[click.Command] = [status, cleanup]
