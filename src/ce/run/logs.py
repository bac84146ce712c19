"""A PRP's log, as `ce logs` reads it: which PRPs have one, where it is, when it is complete.

The log (`StateDir.log`) holds the executor's output, ce's own notes (`[ce] ...`) and every
validation check's command line and output, in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.core.errors import CeError
from ce.core.ids import normalize_id
from ce.plan.graph import id_key
from ce.run.checkpoint import Checkpoint
from ce.run.inspect import checkpoints, lock_holder
from ce.run.state import StateDir

_LISTED = 20  # PRPs named when the one asked for is not known


@dataclass(frozen=True, kw_only=True)
class PrpLog:
    prp_id: str
    path: Path
    batch_id: str | None  # the batch whose checkpoint names it (None: only its log is left)


def find_log(state: StateDir, prp: str, batch_id: str | None) -> PrpLog:
    """The log of `prp` (an id as the user typed it: `PRP-43.2.1`, `43.2.1`); a CeError
    listing the PRPs ce knows of (in `batch_id`, or anywhere) when it is none of them."""
    known = known_prps(state, batch_id)
    prp_id = normalize_id(prp)
    if prp_id is None or prp_id not in known:
        where = f"batch {batch_id}" if batch_id is not None else "any batch run here"
        names = sorted(known, key=id_key)
        more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
        listed = ", ".join(names[:_LISTED]) + more or "none (no batch has been run here)"
        raise CeError(
            f"{prp} is not a PRP of {where}, so ce has no log of it. Known PRPs: {listed}."
        )
    return PrpLog(prp_id=prp_id, path=state.log(prp_id), batch_id=known[prp_id])


def known_prps(state: StateDir, batch_id: str | None) -> dict[str, str | None]:
    """Each PRP ce ran or planned here → its batch: from the checkpoints, and (without
    `batch_id`) from the logs left behind."""
    known: dict[str, str | None] = {}
    if batch_id is None:
        logs = state.log("PRP-x").parent
        known = {p.stem: None for p in sorted(logs.glob("PRP-*.log"))}
    for path in checkpoints(state, batch_id):
        try:
            saved = Checkpoint.read(path)
        except CeError:
            continue  # damaged: its PRPs' logs are still listed
        known.update(dict.fromkeys(saved.results(), saved.batch_id))
    return known


def finished(repo: git.Repo, state: StateDir, log: PrpLog) -> bool:
    """Whether nothing more will be written to the log: the PRP is finished, or no ce runs its
    batch now."""
    holder = lock_holder(repo.common_dir())
    if holder is None or (log.batch_id is not None and holder.batch_id != log.batch_id):
        return True
    if log.batch_id is None:
        return False
    try:
        saved = Checkpoint.read(state.checkpoint(log.batch_id)).results().get(log.prp_id)
    except CeError:
        return False
    return saved is not None and saved.state.finished
