"""`ce lint`, `ce new`: writing PRP files a run can trust."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from ce.config import load_config
from ce.core.errors import CeError
from ce.core.names import prp_file_name
from ce.prp.discover import batch_files, batch_token
from ce.prp.parse import parse_prp
from ce.prp.skeleton import next_id, skeleton
from ce.run.lint import LintReport, Severity, lint
from ce.run.repository import open_repository

EXIT_PROBLEMS = 1


@click.command("lint", short_help="Check PRP files for every problem a run would meet.")
@click.argument("prps", nargs=-1)
@click.option("--batch", metavar="N", help="Check every PRP-N.*.md in the PRP directory.")
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
def lint_command(prps: tuple[str, ...], batch: str | None, strict: bool) -> int:
    """Check PRP files without running anything: misspelled keys, untracked files, YAML and
    field errors, the planner's errors (unknown or cyclic dependencies, duplicate ids) and
    warnings; keys ce does not read are listed.

    \b
    With no PRP and no --batch, every batch's files in the PRP directory are checked.
    Exit status: 0 no errors (warnings allowed), 1 errors (with --strict: warnings too),
    2 ce could not check (not a repository, no such batch).

    \b
    Examples:
      ce lint --batch 43
      ce lint PRPs/feature-requests/PRP-43.2.1-cache.md   # as pre-commit passes files
    """
    report = lint(Path.cwd(), batch=batch, prps=prps)
    for finding in report.findings:
        click.echo(f"{finding.severity.value}: {finding.message}")
    click.echo(_tally(report))
    failing = report.count(Severity.ERROR) + (report.count(Severity.WARNING) if strict else 0)
    return EXIT_PROBLEMS if failing else 0


def _tally(report: LintReport) -> str:
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    files = f"{report.files} PRP file{'s' if report.files != 1 else ''}"
    if not errors and not warnings:
        return f"{files} checked: no problems."
    return f"{files} checked: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@click.command("new", short_help="Write a PRP skeleton with the next id of a batch.")
@click.argument("title")
@click.option("--batch", metavar="N", required=True, help="The batch the PRP belongs to.")
@click.option(
    "--stage",
    type=click.IntRange(min=1),
    metavar="N",
    help="Put it in stage N (default: the batch's last stage).",
)
def new_command(title: str, batch: str, stage: int | None) -> int:
    """Write PRP-<batch>.<stage>.<n>-<title>.md in the PRP directory: every field the planner
    reads, an `## Implementation` section with two phases and a `sh run` example. An existing
    file is never overwritten.

    \b
    Example:
      ce new --batch 43 "Cache layer"   # PRPs/feature-requests/PRP-43.1.1-cache-layer.md
    """
    _, root = open_repository(Path.cwd())
    prp_dir = root / load_config(root, {}).prp_dir
    batch_id = batch_token(batch)
    existing = batch_files(prp_dir, batch_id) if prp_dir.is_dir() else []
    prp_id, chosen = next_id(batch_id, [*(p.name for p in existing), *_ids(existing)], stage)
    path = prp_dir / prp_file_name(prp_id, title)
    text = skeleton(prp_id, title, batch=batch_id, stage=chosen, example_file=f"docs/{path.name}")
    prp_dir.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8", newline="\n") as file:
            file.write(text)
    except FileExistsError:
        raise CeError(f"{path} already exists: ce new never overwrites a file.") from None
    shown = path.relative_to(root).as_posix()
    click.echo(f"Created {shown} ({prp_id}).")
    click.echo(f"Fill it in, check it with `ce lint {shown}`, then commit it: `git add {shown}`.")
    return 0


def _ids(paths: list[Path]) -> list[str]:
    """The ids the batch's files declare (a file that does not parse has its name's)."""
    ids = []
    for path in paths:
        with contextlib.suppress(CeError):
            ids.append(parse_prp(path).id)
    return ids


COMMANDS: list[click.Command] = [lint_command, new_command]
