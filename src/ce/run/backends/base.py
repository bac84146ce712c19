"""What the worker asks of where its PRP runs (DESIGN.md § Backends): `Place`, one per PRP
run, made by the batch's `Backend`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ce import git, proc
from ce.agents.base import ExecutorJob
from ce.core.events import Listener
from ce.prp.model import Prp
from ce.run.load import BatchContext
from ce.run.record import LevelResult
from ce.run.state import Journal
from ce.run.validate import ValidationTarget


@dataclass(frozen=True, kw_only=True)
class Site:
    """One PRP's run as its place sees it."""

    ctx: BatchContext
    prp: Prp
    worktree: Path  # on this machine: the PRP's worktree (with `ray`, the branch's mirror)
    branch: str
    log_path: Path
    journal: Journal
    emit: Listener
    on_group: Callable[[int | None], None]  # a local process group to stop on Ctrl-C


class Place(Protocol):
    """Where one PRP's launches run, from its first launch to its validation."""

    def prepare(self, *, fresh: bool) -> str | None:
        """`.worktreeinclude` and `setup`; why it failed (the PRP fails with it), or None."""

    def command(self, job: ExecutorJob, argv: list[str] | None) -> list[str]:
        """The argv to start (`argv` given: that one, a nudge), its files written."""

    def spawn(self, job: ExecutorJob, argv: list[str], env: Mapping[str, str]) -> proc.Supervised:
        """Start it; its output goes to the PRP's log (masked), its commits to its branch."""

    def launched(self, child: proc.Supervised) -> dict[str, object]:
        """What the journal's `launched` fact says of it, beyond the PRP."""

    def lost(self) -> str | None:
        """Why the last launch ended with the machine it ran on (None: it did not)."""

    def recover(self) -> bool:
        """After a `lost` launch: a new place from the last commit shipped; False when the
        relaunches are used up."""

    def save_leftovers(self, repo: git.Repo) -> bool:
        """Commit what the executor left (work is never lost); True when nothing but committed
        files is left."""

    def validate(
        self, target: ValidationTarget, environ: Mapping[str, str], *, bare: bool
    ) -> dict[str, LevelResult]:
        """L1-L4 of the branch, where it was made."""

    def interrupt(self, grace: float) -> None:
        """The batch is interrupted: stop what runs elsewhere (local groups are stopped by
        their pgid)."""

    def close(self) -> None:
        """Done with it: nothing of it keeps running."""


class Backend(Protocol):
    name: str

    def place(self, site: Site) -> Place: ...

    def close(self) -> None: ...
