"""`ce validate`: the orchestrator's validation gates, run by hand (or by an agent)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from ce import git
from ce.config import load_config
from ce.core.errors import CeError
from ce.prp.discover import resolve_prps
from ce.prp.model import Prp
from ce.run.repository import open_repository
from ce.run.validate import LEVELS, ValidationTarget, level_key, run_levels


@click.command("validate", short_help="Run validation gates L1-L4 on this checkout.")
@click.option(
    "--level",
    "level",
    type=click.Choice(("1", "2", "3", "4", "all")),
    default="all",
    show_default=True,
    help="Run levels 1..N (or all four).",
)
@click.option("--prp", "prp_id", help="The PRP whose branch this is (default: $CE_PRP_ID).")
@click.option(
    "--base",
    help="The commit the work started from (default: $CE_BASE, else the merge-base with "
    "main/master).",
)
def validate(level: str, prp_id: str | None, base: str | None) -> int:
    """Run validation gates L1-L4 on the current checkout: structure, syntax, tests, integration.

    \b
    L1 structure: commits beyond the base, checkpoint grammar, declared files, conflict markers
    L2 syntax: py_compile of changed Python files (or [validate] level2)
    L3 tests: [validate] level3, or a detected pytest / npm test / make test
    L4 integration: [validate] level4 and drift against the PRP's declared files
    """
    repo, root = open_repository(Path.cwd())
    config = load_config(root)
    prp = _prp(prp_id or os.environ.get("CE_PRP_ID"), root, config.prp_dir)
    levels = LEVELS if level == "all" else tuple(range(1, int(level) + 1))
    head, start = repo.rev_parse("HEAD"), _base(repo, base)
    # No base given and no work beyond where HEAD left main: this is the target itself (after
    # a merge, say). Its tree is validated; the checks of a PRP's branch do not apply to it.
    on_target = head == start and not (base or os.environ.get("CE_BASE"))
    target = ValidationTarget(
        worktree=root,
        base=start,
        head=head,
        prp=prp,
        prp_relpath=None if prp is None else _relpath(prp, root),
        branch_checks=prp is not None and not on_target,
    )
    results = run_levels(target, config.validation, levels)
    console = Console()
    if on_target and prp is not None:
        console.print(
            f"HEAD ({head[:10]}) has no commits beyond its base: validating its tree as it is "
            f"(the configured checks and the tests); the checks of {escape(prp.id)}'s branch "
            "(commits, checkpoint grammar, drift, its changed files) do not apply."
        )
    for number in levels:
        result = results.get(level_key(number))
        if result is None:
            console.print(f"Level {number}: [dim]not run (an earlier level failed)[/]")
            continue
        word = (
            "[dim]SKIP[/]"
            if result.skipped
            else "[green]PASS[/]"
            if result.passed
            else "[red]FAIL[/]"
        )
        console.print(f"Level {number} ({_NAMES[number]}): {word}")
        for error in result.errors:
            console.print(f"    {escape(error)}")
    return 0 if all(r.passed for r in results.values()) else 1


_NAMES = {1: "structure", 2: "syntax", 3: "tests", 4: "integration"}


def _prp(prp_id: str | None, root: Path, prp_dir: str) -> Prp | None:
    if not prp_id:
        return None
    return resolve_prps([prp_id], root / prp_dir, root)[0]


def _relpath(prp: Prp, root: Path) -> str | None:
    try:
        return prp.path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def _base(repo: git.Repo, given: str | None) -> str:
    """--base, else $CE_BASE (set for agents), else where HEAD left main/master."""
    for source, rev in (("--base", given), ("CE_BASE", os.environ.get("CE_BASE"))):
        if rev:
            commit = repo.try_rev_parse(f"{rev}^{{commit}}")
            if commit is None:
                raise CeError(
                    f"{source} {rev}: no such commit here. Give the commit the work started "
                    "from (a branch, tag or sha), e.g. --base main."
                )
            return commit
    return _default_base(repo)


def _default_base(repo: git.Repo) -> str:
    for branch in ("main", "master"):
        if repo.branch_exists(branch):
            return repo.merge_base("HEAD", branch)
    raise CeError("Cannot tell where this work started: pass --base REV (e.g. --base main).")


COMMANDS: list[click.Command] = [validate]
