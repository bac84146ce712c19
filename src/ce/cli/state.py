"""`ce status` and `ce cleanup`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ce import git
from ce.core.durations import format_duration
from ce.core.errors import CeError
from ce.core.outcome import BatchStatus
from ce.run.checkpoint import Checkpoint
from ce.run.inspect import (
    BatchStatusView,
    CleanupReport,
    Leftover,
    batch_status,
    checkpoint_leftovers,
    checkpoints,
    cleanup_batch,
)
from ce.run.lock import batch_lock
from ce.run.repository import open_repository
from ce.run.state import StateDir
from ce.ui.reports.history import past_runs


@click.command("status", short_help="Where each batch stands (checkpoint and git).")
@click.option("--batch", "batch_id", metavar="N", help="Only this batch (default: every batch).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: {batches: [...]}.")
def status(batch_id: str | None, as_json: bool) -> int:
    """Where each batch stands: per PRP its state, phases, branch, worktree and last commit.

    Read from the batch's checkpoint and from git (branches, phase commits, worktrees); says
    whether the batch is running now or waits for --resume. Phases are counted from the PRP's
    commits, so they advance while it runs; a PRP that was at work when its batch stopped
    shows as interrupted.
    """
    repo, root = open_repository(Path.cwd())
    state = StateDir.of(root)
    views = [batch_status(repo, path) for path in checkpoints(state, batch_id)]
    runs = {v.batch_id: len(past_runs(state.root, v.batch_id)) for v in views}
    if as_json:
        batches = [v.to_json() | {"past_runs": runs[v.batch_id]} for v in views]
        click.echo(json.dumps({"batches": batches}, indent=2))
        return 0
    if not views:
        click.echo("No batch has been run in this repository.")
    console = _console()
    for view in views:
        _render(view, console)
        if runs[view.batch_id]:
            console.print(f"  Reports of {runs[view.batch_id]} run(s) kept in {state.root}\n")
    return 0


def _console() -> Console:
    """Paths are never cut: a pipe (a script, an agent reading the output) gets full lines."""
    return Console() if sys.stdout.isatty() else Console(width=1000)


def _render(view: BatchStatusView, console: Console) -> None:
    if view.problem is not None:
        console.print(f"[bold]Batch {escape(view.batch_id)}[/]: [red]{view.status}[/]")
        console.print(f"  {escape(view.problem)}\n")
        return
    console.print(
        f"[bold]Batch {escape(view.batch_id)}[/]: {view.status}{_liveness(view)} "
        f"(target {escape(view.target)})"
    )
    table = Table(box=None, pad_edge=False)
    for column in ("PRP", "state", "phases", "branch", "worktree", "last commit", "merged as"):
        table.add_column(column, overflow="fold")
    for prp in view.prps:
        table.add_row(
            escape(prp.id),
            prp.state,
            f"{prp.phases_done}/{prp.phases_total}",
            escape(prp.branch) if prp.branch_exists else "[dim]-[/]",
            escape(prp.worktree) if prp.worktree_exists else "[dim]-[/]",
            "-" if prp.last_commit_age is None else f"{format_duration(prp.last_commit_age)} ago",
            (prp.merged_as or "")[:10],
        )
    console.print(table)
    for prp in view.prps:
        if prp.error and prp.state != "merged":
            console.print(f"  {escape(prp.id)}: {escape(prp.error)}")
    if view.pause_reason:
        console.print(f"[yellow]Paused:[/] {escape(view.pause_reason)}")
    console.print()


def _liveness(view: BatchStatusView) -> str:
    if view.running is not None:
        since = time.strftime("%H:%M:%S", time.localtime(view.running.since))
        return f", running now (pid {view.running.pid}, since {since})"
    if view.stopped:
        return ", not running: continue with --resume, or remove with `ce cleanup`"
    return ""


@click.command("cleanup", short_help="Remove the worktrees, branches and state a batch left.")
@click.option("--batch", "batch_id", metavar="N", help="Only this batch (default: every batch).")
@click.option("--force", is_flag=True, help="Also delete unmerged commits and uncommitted work.")
@click.option(
    "--ray-address",
    metavar="auto|HOST:PORT",
    help="Also stop the batch's agents on this Ray cluster (default: [backend], if ray).",
)
def cleanup(batch_id: str | None, force: bool, ray_address: str | None) -> int:
    """Remove what a batch left behind: worktrees, branches and its state files.

    Branches holding commits that are not on the target, and worktrees with uncommitted
    changes, are kept (with the state --resume needs) unless --force. Refuses while a batch
    runs in this repository. Logs and reports under .ce/tmp/ stay.
    """
    from ce.run import backends  # the configuration, and Ray if it is the backend

    repo, root = open_repository(Path.cwd())
    state = StateDir.of(root)
    with batch_lock(repo.common_dir(), f"{batch_id or 'every batch'} (ce cleanup)"):
        ids = [batch_id] if batch_id else [_batch_of(path) for path in checkpoints(state, None)]
        for name in backends.stop_actors(root, ids, ray_address):  # their agents first
            click.echo(f"Stopped Ray actor {name} and its agent.")
        if batch_id is None:
            reports = [
                _cleanup_one(repo, state, _batch_of(path), force)
                for path in checkpoints(state, None)
            ]
        else:
            reports = [_cleanup_one(repo, state, batch_id, force)]
    for report in reports:
        _print_report(report)
    if all(r.empty for r in reports):
        click.echo("Nothing to clean up.")
    return 1 if any(r.refused for r in reports) else 0


def _batch_of(checkpoint: Path) -> str:
    return checkpoint.stem.removeprefix("batch-execution-")


def _cleanup_one(repo: git.Repo, state: StateDir, batch_id: str, force: bool) -> CleanupReport:
    """From the checkpoint, and from the batch's PRP files: an earlier run's branches and
    worktrees are found even when its checkpoint is gone or unreadable."""
    path = state.checkpoint(batch_id)
    target, prps = checkpoint_leftovers(path)
    found = _from_prp_files(batch_id)
    if found is None and not path.exists():
        raise CeError(f"No checkpoint for batch {batch_id} ({path}): it has not been run here.")
    if found is not None:
        target = target or found[0]
        known = {p.id for p in prps}
        prps += [p for p in found[1] if p.id not in known]
    return cleanup_batch(repo, state, batch_id, target=target, prps=prps, force=force)


def _from_prp_files(batch_id: str) -> tuple[str, list[Leftover]] | None:
    from ce.run.load import RunOptions, load  # the PRP files and the plan: not for `ce status`

    try:
        context = load(RunOptions(batch=batch_id), Path.cwd(), executor_preflight=False)
    except CeError:
        return None
    prps = [
        Leftover(id=p, branch=context.branch(p), worktree=str(context.worktree(p)))
        for p in context.plan.plan.sorted_order
    ]
    return context.target, prps


def _print_report(report: CleanupReport) -> None:
    for item in report.removed_worktrees:
        click.echo(f"removed worktree {item}")
    for item in report.deleted_branches:
        click.echo(f"deleted branch {item}")
    for item in report.removed_files:
        click.echo(f"removed {item}")
    for item in report.refused:
        click.echo(f"kept {item}", err=True)
    if report.refused:
        click.echo(_what_resume_can_do(report.batch_id), err=True)


def _what_resume_can_do(batch_id: str) -> str:
    """The truth about --resume once cleanup kept work: it continues the batch whenever its PRP
    files are there, rebuilding a lost or damaged checkpoint from the journal and git."""
    state = StateDir.of(open_repository(Path.cwd())[1])
    if _completed(state.checkpoint(batch_id)):
        return (
            f"batch {batch_id} is completed, so --resume has nothing to continue: what was kept "
            "holds commits that are not on its target (an earlier attempt that --on-conflict "
            "rerun set aside, say). Look at it with `git log <target>..<branch>`; delete it "
            f"with `ce cleanup --batch {batch_id} --force`"
        )
    files = {"checkpoint": state.checkpoint(batch_id), "journal": state.journal(batch_id)}
    kept = [name for name, path in files.items() if path.exists()]
    what = (
        f"kept the {' and '.join(kept)} of batch {batch_id}"
        if kept
        else f"batch {batch_id} has no checkpoint or journal left"
    )
    if _from_prp_files(batch_id) is None:
        return (
            f"{what}: --resume cannot continue it, its PRP files are not found; restore them to "
            "resume, or delete the work kept with `ce cleanup --force`"
        )
    rebuilt = "" if "checkpoint" in kept else " (it rebuilds the checkpoint from git)"
    return (
        f"{what}: --resume can still continue it and merge the work kept: "
        f"`ce batch-exe --batch {batch_id} --resume`{rebuilt}"
    )


def _completed(path: Path) -> bool:
    try:
        return Checkpoint.read(path).status is BatchStatus.COMPLETED
    except CeError:
        return False


COMMANDS: list[click.Command] = [status, cleanup]
