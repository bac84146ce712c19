"""`ce init`: slash commands for Claude Code, a starter configuration, the .gitignore entry."""

from __future__ import annotations

from pathlib import Path

import click

from ce import git
from ce.core.errors import CeError
from ce.init import Action, init_repository


@click.command("init", short_help="Add slash commands, a starter config, .gitignore entry.")
@click.option("--force", is_flag=True, help="Overwrite files whose content differs from ce's.")
def init(force: bool) -> int:
    """Write .claude/commands/batch-exe-prp.md and execute-prp.md (the /batch-exe-prp and
    /execute-prp slash commands), a commented .ce/config.toml, and `.ce/tmp/` in .gitignore.

    Safe to run again: files you edited are kept unless --force.
    """
    steps = init_repository(_repository_root(Path.cwd()), force=force)
    for step in steps:
        click.echo(f"{step.action.value:>11}  {step.path.as_posix()}")
    if any(step.action is Action.KEPT for step in steps):
        click.echo("Kept files differ from what ce would write: compare, or run `ce init --force`.")
    return 0


def _repository_root(cwd: Path) -> Path:
    try:
        return git.Repo(cwd).toplevel()
    except git.GitError:
        raise CeError(
            f"{cwd} is not inside a git repository: run `ce init` from your repository "
            "(`git init` first for a new project)."
        ) from None


COMMANDS: list[click.Command] = [init]
