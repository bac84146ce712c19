"""Benchmarks (`uv run python -m bench`): figures to read, not timed tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple


class Row(NamedTuple):
    name: str
    figures: str  # what was measured, e.g. "1k: 0.010 s, 10k: 0.110 s"
    ratio: str  # how it scales, with the limit it must stay under
    verdict: str  # "ok", "OVER" the limit, or "" for a row given for information


def run_ce(root: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """`ce batch-exe ARGS --quiet --json` in `root`, as a user runs it: seconds and summary."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: PLW1510 (failure is reported with its output below)
        [sys.executable, "-m", "ce", "batch-exe", *args, "--quiet", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"ce failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return elapsed, summary
