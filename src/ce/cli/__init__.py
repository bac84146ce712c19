"""Command line: argument parsing, exit codes and the choice of rendering; no logic."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback

import click

from ce import __version__
from ce.cli.hints import environment_error, is_environment_error, next_step
from ce.core.errors import CeError, CeFailure

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ce")
def cli() -> None:
    """Execute a batch of PRPs in parallel with coding agents and merge the results safely.

    \b
    Typical use:
      ce batch-exe --batch 43 --dry-run   # see the plan
      ce batch-exe --batch 43             # run it
      ce demo                             # try it on a throwaway repository
    """


def _register() -> None:
    # Imported here so that each command group stays in its own module.
    from ce.cli import analyze, batch, demo, init, logs, prps, state, validate

    groups = (batch, analyze, validate, state, logs, prps, demo, init)
    for command in (c for group in groups for c in group.COMMANDS):
        cli.add_command(command)


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
    _register()
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
