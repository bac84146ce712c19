"""The merge lane (issue 17, benchmark a): 12 independent one-file PRPs whose merged-tree check
sleeps 2 s, with `merge_parallel = 1` (one tree at a time), the default (4, or the machine's
cores if fewer), `merge_parallel = 4`, and `merge_batch = 4` (with the default parallelism).

The check sleeps only in the lane's integration worktrees, so that the figure is the lane's:
the PRPs' own validation is instant in every mode. Each round runs every mode once, side by
side; the figure is each mode's batch time (its summary's elapsed seconds) over the serial
lane's in the same round, as the median of the rounds with their min-max.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench import Row, run_ce

PRPS = 12
ROUNDS = 3
TARGET = 0.40
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
CHECK = "case $PWD in *-ce-integration*) sleep 2;; esac"
CONFIG = """\
executor = "script"
max_parallel = 6
auto_review = false
{lane}
[validate]
level2 = ""
level3 = "sh -c '{check}'"
[monitor]
poll_seconds = 1
"""
MODES = {
    "merge_parallel = 1": "merge_parallel = 1",
    "default": "",
    "merge_parallel = 4": "merge_parallel = 4",
    "merge_batch = 4": "merge_batch = 4",
}


def _prp(n: int) -> str:
    return f"""---
prp_id: PRP-6.1.{n}
title: Work {n}
status: planning
batch_id: 6
dependencies: []
files_modified: [work_{n}.txt]
---

# Work {n}

## Implementation

### Phase 1: Work

```bash run
printf 'done\\n' > work_{n}.txt
```
"""


def make_repo(parent: Path, lane: str) -> Path:
    root = parent / "repo"
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for n in range(1, PRPS + 1):
        (prp_dir / f"PRP-6.1.{n}.md").write_text(_prp(n), "utf-8")
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(CONFIG.format(lane=lane, check=CHECK), "utf-8")
    (root / ".gitignore").write_text(".ce/tmp/\n", "utf-8")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "initial")):
        subprocess.run(["git", *IDENTITY, *args], cwd=root, check=True, capture_output=True)
    return root


def batch_time(lane: str) -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-lane-") as tmp:
        root = make_repo(Path(tmp), lane)
        _, summary = run_ce(root, "--batch", "6")
        return float(summary["elapsed_seconds"])


def run() -> list[Row]:
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(ROUNDS):
        for mode, lane in MODES.items():
            times[mode].append(batch_time(lane))
    serial = times["merge_parallel = 1"]
    rows = []
    for mode in MODES:
        if mode == "merge_parallel = 1":
            continue
        ratios = [t / s for t, s in zip(times[mode], serial, strict=True)]
        limit = f" (target <= {TARGET}x)" if mode == "default" else ""
        verdict = ("ok" if statistics.median(ratios) <= TARGET else "OVER") if limit else ""
        rows.append(
            Row(
                name=f"lane: {PRPS} PRPs, 2 s merged-tree check, {mode} vs merge_parallel = 1",
                figures=f"{_spread(times[mode])} vs {_spread(serial)}"
                + (f" (default here: {min(4, os.cpu_count() or 1)})" if mode == "default" else ""),
                ratio=f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                + limit,
                verdict=verdict,
            )
        )
    return rows


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    for row in run():
        print(row)
