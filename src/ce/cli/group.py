"""The click group: every command by name, each module imported only when its command runs.

`ce.cli.run` imports it for every command but a plain `ce analyze-deps FILE`."""

from __future__ import annotations

import importlib

import click

from ce import __version__

# Every command: the module that defines it and its line in `ce --help`, so that neither the
# help nor a command imports the others (tests/test_cli_startup.py checks this table against
# the modules' own COMMANDS).
COMMAND_TABLE: dict[str, tuple[str, str]] = {
    "analyze-deps": ("analyze", "Plan the items of FILE.json: stages, file conflicts, cycles."),
    "batch-exe": ("batch", "Run a batch of PRPs in parallel; merge them one by one."),
    "cleanup": ("state", "Remove the worktrees, branches and state a batch left."),
    "demo": ("demo", "Run a 5-PRP demo batch in a throwaway repository."),
    "execute-prp": ("batch", "Run one PRP with the same engine."),
    "init": ("init", "Add slash commands, a starter config, .gitignore entry."),
    "lint": ("prps", "Check PRP files for every problem a run would meet."),
    "logs": ("logs", "Print a PRP's log: agent output, ce's notes, validation."),
    "new": ("prps", "Write a PRP skeleton with the next id of a batch."),
    "status": ("state", "Where each batch stands (checkpoint and git)."),
    "validate": ("validate", "Run validation gates L1-L4 on this checkout."),
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or shows its own help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_TABLE)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_TABLE:
            return None
        module = importlib.import_module(f"ce.cli.{COMMAND_TABLE[cmd_name][0]}")
        commands: list[click.Command] = module.COMMANDS
        return next(c for c in commands if c.name == cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMAND_TABLE[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def all_commands() -> dict[str, click.Command]:
    """Every command by name, each module imported (what `ce --help` spares)."""
    context = click.Context(cli)
    found = {name: cli.get_command(context, name) for name in COMMAND_TABLE}
    return {name: command for name, command in found.items() if command is not None}


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ce.prp.safe_yaml import LOADER  # which YAML loader reads PRPs: C, or the fallback

    click.echo(f"ce, version {__version__} (YAML loader: {LOADER})")
    ctx.exit()


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Execute a batch of PRPs in parallel with coding agents and merge the results safely.

    \b
    Typical use:
      ce batch-exe --batch 43 --dry-run   # see the plan
      ce batch-exe --batch 43             # run it
      ce demo                             # try it on a throwaway repository
    """
