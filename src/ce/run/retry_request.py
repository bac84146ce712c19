"""Which PRPs `--retry-prp` and `--stage N --retry` run again, the names that keep their earlier
attempts, and what the journal says of retries: pure rules over data, tested as data.

A retry runs a PRP again from the current target. Its earlier attempt is never lost: its branch
is renamed `<branch>-attempt-N` first. The journal holds an intent for each retry before any
effect (`retry`) and a fact once the attempt is set aside (`retried`), so a run killed at any
instant finishes the retry on `--resume`, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ce.core.errors import CeError
from ce.core.ids import normalize_id

ATTEMPT = "-attempt-"


def requested(
    names: Sequence[str],
    *,
    stage: int | None,
    whole_stage: bool,
    stages: Sequence[Sequence[str]],
    done: Mapping[str, str],
    batch: str,
) -> tuple[str, ...]:
    """The PRPs to run again, in plan order: those named (`43.2.1` or `PRP-43.2.1`), and with
    `whole_stage` every PRP of `stage` not done. `done`: PRP id → its file, for those whose
    status says they are done. A name outside the plan, or a PRP done, is the user's error."""
    if whole_stage and stage is None:
        raise CeError(
            "--retry runs again every unmerged PRP of one stage: give it with --stage N "
            "(or name PRPs with --retry-prp ID)."
        )
    order = [p for ids in stages for p in ids]
    stage_of = {p: n for n, ids in enumerate(stages, start=1) for p in ids}
    wanted: set[str] = set()
    for name in names:
        prp_id = normalize_id(name)
        if prp_id is None or prp_id not in stage_of:
            known = ", ".join(order) or "none"
            raise CeError(f"--retry-prp {name}: no such PRP in batch {batch} (its PRPs: {known}).")
        if stage is not None and stage_of[prp_id] != stage:
            raise CeError(
                f"--retry-prp {name}: {prp_id} is in stage {stage_of[prp_id]}, not stage {stage}."
            )
        wanted.add(prp_id)
    completed = sorted(wanted & done.keys())
    if completed:
        prp_id = completed[0]
        raise CeError(
            f"--retry-prp {prp_id}: it is completed ({done[prp_id]} says so): there is nothing "
            "to retry. To run it again, set its `status:` back to `ready` in that file, commit, "
            f"and run the batch again (`ce batch-exe --batch {batch}`)."
        )
    if whole_stage:
        wanted.update(p for p in stages[(stage or 1) - 1] if p not in done)
    return tuple(p for p in order if p in wanted)


def attempt_branch(branch: str, existing: Iterable[str]) -> str:
    """`<branch>-attempt-N`, N one more than the highest attempt kept so far."""
    prefix = branch + ATTEMPT
    suffixes = (b.removeprefix(prefix) for b in existing if b.startswith(prefix))
    return f"{prefix}{max((int(n) for n in suffixes if n.isdigit()), default=0) + 1}"


@dataclass(frozen=True, kw_only=True)
class Retries:
    """The retries of the batch's current run, as its journal has them."""

    # PRP → (branch, kept): intents without their fact (a run killed while setting it aside).
    unfinished: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # PRP → the branches keeping its earlier attempts, in the order they were set aside.
    kept: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def journal_retries(entries: Sequence[Mapping[str, Any]]) -> Retries:
    """Retries since the batch last started afresh (a run without --resume): entries of runs
    before it belong to attempts a later run already replaced."""
    starts = [n for n, e in enumerate(entries) if e.get("fact") == "start" and not e.get("resume")]
    since = entries[starts[-1] :] if starts else entries
    unfinished: dict[str, tuple[str, str]] = {}
    kept: dict[str, list[str]] = {}
    for entry in since:
        prp, branch, name = entry.get("prp"), entry.get("branch"), entry.get("kept")
        if not isinstance(prp, str) or not isinstance(name, str):
            continue
        if entry.get("intent") == "retry" and isinstance(branch, str):
            unfinished[prp] = (branch, name)
        elif entry.get("fact") == "retried":
            unfinished.pop(prp, None)
            if name not in kept.setdefault(prp, []):
                kept[prp].append(name)
    return Retries(unfinished=unfinished, kept={p: tuple(k) for p, k in kept.items()})
