"""Time per PRP as the batch grows: the overhead batch at 50 and at 200 one-file PRPs (-j4).

What grows with the batch shows here and nowhere else: a checkpoint rewritten whole at every
event (O(N) a write), a lock held over every checkout, worktrees piling up. Each round runs both
sizes; the figure is the 200-PRP run's seconds per PRP over the 50-PRP run's, round by round
(median and min-max). With `CE_BENCH_BASELINE=<src>` the ce found there runs in the same rounds.
"""

from __future__ import annotations

import statistics
import sys

from bench import Row, baseline_env, rounds, spread
from bench.overhead import time_ce

SMALL, LARGE = 50, 200
PARALLEL = 4
TARGET = 1.1
MS = "{:.3f}"


def run() -> list[Row]:
    versions = {"": None} | ({"before: ": env} if (env := baseline_env()) else {})
    per_prp: dict[tuple[str, int], list[float]] = {
        (v, n): [] for v in versions for n in (SMALL, LARGE)
    }
    for number in range(1, rounds() + 1):
        for version, env in versions.items():
            for prps in (SMALL, LARGE):
                per_prp[version, prps].append(time_ce(PARALLEL, prps, env) / prps)
                seconds = per_prp[version, prps][-1]
                print(
                    f"scale round {number}: {version}{prps} PRPs {seconds:.3f} s/PRP",
                    file=sys.stderr,
                )
    rows = []
    for version in versions:
        small, large = per_prp[version, SMALL], per_prp[version, LARGE]
        ratios = [b / a for a, b in zip(small, large, strict=True)]
        rows.append(
            Row(
                name=f"{version}scale: time per PRP, {SMALL} vs {LARGE} PRPs (-j{PARALLEL})",
                figures=f"{SMALL}: {spread(small, MS)} s, {LARGE}: {spread(large, MS)} s",
                ratio=f"{spread(ratios)}x (target <= {TARGET}x)",
                verdict="ok" if statistics.median(ratios) <= TARGET else "OVER",
            )
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
