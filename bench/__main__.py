"""Run the benchmarks and print one table: `uv run python -m bench [NAME ...]`.

With no NAME every benchmark runs, in order; `python -m bench overhead scale` runs those two.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    Row,
    board,
    lane,
    large_repo,
    overhead,
    plan,
    ray,
    scale,
    schedule,
    startup,
    supervision,
)

# Every benchmark by name, in the order they run: each module has `run() -> list[Row]`.
BENCHMARKS: dict[str, Callable[[], list[Row]]] = {
    "schedule": schedule.run,
    "overhead": overhead.run,
    "scale": scale.run,
    "plan": plan.run,
    "supervision": supervision.run,
    "large_repo": large_repo.run,
    "startup": startup.run,
    "board": board.run,
    "lane": lane.run,
    "ray": ray.run,  # needs the ray extra (in the dev group)
}


def table(rows: list[Row]) -> list[str]:
    header = Row(name="benchmark", figures="figures", ratio="ratio", verdict="")
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    rows: list[Row] = []
    for name in names or BENCHMARKS:
        rows += BENCHMARKS[name]()
        print(f"{name}: done", file=sys.stderr, flush=True)
    for line in table(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
