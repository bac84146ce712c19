"""Command line: argument parsing, exit codes and the choice of rendering; no logic."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import traceback

import click

from ce import __version__
from ce.core.errors import CeError, CeFailure

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    _flush_or_forget()
    sys.exit(code)


def _flush_or_forget() -> None:
    """A closed terminal or pipe must not turn the exit code into 120 at interpreter exit."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())
            os.close(devnull)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and map every outcome to an exit code scripts can trust."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = cli.main(args=args, prog_name="ce", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        return _json_error(args, code, exc.format_message())
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except CeError as exc:
        from ce.cli.hints import next_step  # the words for every failure: not for --help

        message = f"{exc}{next_step(exc.next_step)}"
        click.echo(f"error: {message}", err=True)
        return _json_error(args, EXIT_USAGE, message)
    except CeFailure as exc:
        click.echo(f"failed: {exc}", err=True)
        return _json_error(args, EXIT_FAILED, str(exc))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:
        from ce.cli.hints import environment_error, is_environment_error

        if not is_environment_error(exc):
            raise
        message = environment_error(exc)
        click.echo(f"error: {message}", err=True)
        return _json_error(args, EXIT_USAGE, message)
    except Exception as exc:  # a bug: show everything we know
        traceback.print_exc()
        click.echo(
            f"\nThis is a bug in ce {__version__}. Please report it with the traceback above.",
            err=True,
        )
        return _json_error(args, EXIT_FAILED, f"bug: {type(exc).__name__}: {exc}")
    return int(result) if isinstance(result, int) else EXIT_OK


def _json_error(args: list[str], code: int, message: str) -> int:
    """With --json, stdout always holds one JSON object, an error included (the message is on
    stderr too): a script reads `status` instead of parsing nothing."""
    options = args[: args.index("--")] if "--" in args else args
    if "--json" in options:
        click.echo(json.dumps({"status": "ERROR", "exit_code": code, "error": message}))
    return code
