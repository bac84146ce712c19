"""Command line: argument parsing, exit codes and the choice of rendering; no logic."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys

from ce import __version__
from ce.core.errors import CeError, CeFailure

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
        if _is_plain_analyze(args):
            return _analyze(args[1])
        return _run_click(args)
    except CeError as exc:
        from ce.cli.hints import next_step  # the words for every failure: not for --help

        message = f"{exc}{next_step(exc.next_step)}"
        _echo_error(f"error: {message}")
        return _json_error(args, EXIT_USAGE, message)
    except CeFailure as exc:
        _echo_error(f"failed: {exc}")
        return _json_error(args, EXIT_FAILED, str(exc))
    except KeyboardInterrupt:
        _echo_error("Interrupted.")
        return EXIT_INTERRUPTED
    except OSError as exc:
        from ce.cli.hints import environment_error, is_environment_error

        if not is_environment_error(exc):
            raise
        message = environment_error(exc)
        _echo_error(f"error: {message}")
        return _json_error(args, EXIT_USAGE, message)
    except Exception as exc:  # a bug: show everything we know
        import traceback  # here only: the start-up of every command is spared it

        traceback.print_exc()
        _echo_error(
            f"\nThis is a bug in ce {__version__}. Please report it with the traceback above."
        )
        return _json_error(args, EXIT_FAILED, f"bug: {type(exc).__name__}: {exc}")


def _run_click(args: list[str]) -> int:
    import click

    from ce.cli.group import cli

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
    return int(result) if isinstance(result, int) else EXIT_OK


def _is_plain_analyze(args: list[str]) -> bool:
    """`ce analyze-deps FILE` and nothing else: run without click, which would be a third of
    its start-up (the seed's orchestrator calls it once per plan). Any option, `--help`
    included, goes through click as every other command does."""
    return len(args) == 2 and args[0] == "analyze-deps" and args[1][:1] not in ("", "-")


def _analyze(file: str) -> int:
    """What `ce.cli.analyze` does for `ce analyze-deps FILE`, to the byte."""
    # A command that plans and exits: its tens of thousands of tuples hold no cycles for the
    # collector to find, and its passes over them were a twentieth of the run.
    gc.disable()
    from ce.plan.deps import analyze_file, cycle_message, render

    path = path_text(file)  # as click.Path(path_type=Path) gives it: the messages name it so
    result = analyze_file(path)
    print(render(result), flush=True)
    if result["has_cycles"]:
        raise CeError(cycle_message(path, result["cycle"]))
    return EXIT_OK


def path_text(file: str) -> str:
    """`str(pathlib.Path(file))`, without importing pathlib for a name that is already in
    that form (no empty or `.` part, no trailing `/`): the usual case."""
    rest = file[1:] if file[:1] == "/" and file[:2] != "//" else file
    if all(part not in ("", ".") for part in rest.split("/")):
        return file
    from pathlib import Path

    return str(Path(file))


def _echo_error(message: str) -> None:
    click = sys.modules.get("click")  # through click where it ran: its stream handling, then
    if click is not None:
        click.echo(message, err=True)
    else:
        print(message, file=sys.stderr, flush=True)


def _json_error(args: list[str], code: int, message: str) -> int:
    """With --json, stdout always holds one JSON object, an error included (the message is on
    stderr too): a script reads `status` instead of parsing nothing."""
    options = args[: args.index("--")] if "--" in args else args
    if "--json" in options:
        print(json.dumps({"status": "ERROR", "exit_code": code, "error": message}), flush=True)
    return code
