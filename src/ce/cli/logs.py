"""`ce logs`: a PRP's log (its agent's output, ce's notes, its validation output)."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import click

from ce.run.logs import PrpLog, find_log, finished
from ce.run.repository import open_repository
from ce.run.state import StateDir
from ce.ui.text import strip_escapes

FOLLOW_POLL_SECONDS = 0.2


@click.command("logs", short_help="Print a PRP's log: agent output, ce's notes, validation.")
@click.argument("prp")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the PRP finishes.")
@click.option("--batch", "batch_id", metavar="N", help="Look only in batch N.")
def logs(prp: str, follow: bool, batch_id: str | None) -> int:
    """Print PRP's log: what its executor printed, ce's notes (`[ce] ...`) and the command line
    and output of every validation check, in the order they happened.

    \b
    Examples:
      ce logs PRP-43.2.1       # the whole log so far
      ce logs 43.2.1 -f        # and what comes, until the PRP finishes (or Ctrl-C)
    """
    repo, root = open_repository(Path.cwd())
    state = StateDir.of(root)
    log = find_log(state, prp, batch_id)
    reader = _Reader(log)
    reader.print_new()
    if not follow:
        if not log.path.exists():
            click.echo(f"{log.prp_id} has no output yet ({log.path} does not exist).", err=True)
        return 0
    while not finished(repo, state, log):
        time.sleep(FOLLOW_POLL_SECONDS)
        reader.print_new()
    reader.print_new()  # what was written between the last look and the end
    reader.close()
    return 0


class _Reader:
    """Prints what was appended to the log since the last look (a line may come in parts)."""

    def __init__(self, log: PrpLog) -> None:
        self.path = log.path
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def print_new(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        self._write(self.decoder.decode(data))

    def close(self) -> None:
        self._write(self.decoder.decode(b"", final=True))

    def _write(self, text: str) -> None:
        if text:
            # An agent's colours are kept out; so are escapes that would retitle the terminal.
            click.echo(strip_escapes(text), nl=False)


COMMANDS: list[click.Command] = [logs]
