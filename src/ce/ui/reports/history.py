"""Reports of earlier runs: each run's three files under its start time
(`batch-43-20261202T013000Z-report.json`, `…-junit.xml`, `…-report.html`), beside the latest
under the batch's own names; the oldest beyond `KEEP_RUNS` a batch are removed."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from ce.core.outcome import ReportPaths

KEEP_RUNS = 20
_STAMP = r"\d{8}T\d{6}Z(?:-\d+)?"
_SUFFIXES = ("-report.json", "-junit.xml", "-report.html")


def run_paths(state_dir: Path, batch_id: str, started_at: float) -> ReportPaths:
    """The run's own names: its start time (UTC), and `-2`, `-3`… for runs in the same second."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))
    taken = set(past_runs(state_dir, batch_id))
    name, n = stamp, 1
    while name in taken:
        n += 1
        name = f"{stamp}-{n}"
    return ReportPaths.of(state_dir, f"{batch_id}-{name}")


def past_runs(state_dir: Path, batch_id: str) -> list[str]:
    """The start times of the runs whose reports are kept, oldest first."""
    pattern = re.compile(re.escape(f"batch-{batch_id}-") + f"({_STAMP})-report\\.json")
    try:
        names = [p.name for p in state_dir.iterdir()]
    except OSError:
        return []
    stamps = [m.group(1) for m in map(pattern.fullmatch, names) if m is not None]
    return sorted(stamps, key=_order)


def prune(state_dir: Path, batch_id: str, keep: int = KEEP_RUNS) -> None:
    runs = past_runs(state_dir, batch_id)
    for stamp in runs[: max(0, len(runs) - keep)]:
        for suffix in _SUFFIXES:
            with contextlib.suppress(OSError):
                (state_dir / f"batch-{batch_id}-{stamp}{suffix}").unlink()


def _order(stamp: str) -> tuple[str, int]:
    base, _, n = stamp.partition("-")
    return base, int(n or 1)
