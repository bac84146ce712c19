"""Benchmarks (`uv run python -m bench`): figures to read, not timed tests."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

# `CE_BENCH_BASELINE=<a checkout's src>`: the benchmarks that compare versions also run the
# `ce` found there, side by side with this one (e.g. a `git worktree add` of the commit before).
BASELINE_ENV = "CE_BENCH_BASELINE"
ROUNDS = 3  # `CE_BENCH_ROUNDS` overrides it


class Row(NamedTuple):
    name: str
    figures: str  # what was measured, e.g. "1k: 0.010 s, 10k: 0.110 s"
    ratio: str  # how it scales, with the limit it must stay under
    verdict: str  # "ok", "OVER" the limit, or "" for a row given for information


def run_ce(
    root: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[float, dict[str, Any]]:
    """`ce batch-exe ARGS --quiet --json` in `root`, as a user runs it: seconds and summary."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: PLW1510 (failure is reported with its output below)
        [sys.executable, "-m", "ce", "batch-exe", *args, "--quiet", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]  # a failed batch's summary is long
        raise RuntimeError(f"ce failed ({done.returncode}) in {root}:\n...{tail}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return elapsed, summary


def baseline_env() -> dict[str, str] | None:
    """The environment that runs the baseline `ce` (`CE_BENCH_BASELINE`), or None."""
    source = os.environ.get(BASELINE_ENV)
    if not source:
        return None
    return dict(os.environ) | {"PYTHONPATH": str(Path(source).resolve())}


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """The median of `values`, with their min-max: `1.23 (1.10-1.40)`."""
    median = statistics.median(values)
    low, high = min(values), max(values)
    return f"{fmt.format(median)} ({fmt.format(low)}-{fmt.format(high)})"


def rounds() -> int:
    """How many rounds the benchmarks that take a median run: `CE_BENCH_ROUNDS`, else 3."""
    configured = os.environ.get("CE_BENCH_ROUNDS", "")
    return max(1, int(configured)) if configured.isdigit() else ROUNDS
