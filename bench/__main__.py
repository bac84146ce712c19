"""Run every benchmark and print one table: `uv run python -m bench`."""

from __future__ import annotations

from collections.abc import Callable

from bench import Row, board, lane, large_repo, overhead, plan, schedule, startup, supervision

# Every benchmark module, in the order they run: each has `run() -> list[Row]`.
BENCHMARKS: tuple[Callable[[], list[Row]], ...] = (
    schedule.run,
    overhead.run,
    plan.run,
    supervision.run,
    large_repo.run,
    startup.run,
    board.run,
    lane.run,
)


def table(rows: list[Row]) -> list[str]:
    header = Row(name="benchmark", figures="figures", ratio="ratio", verdict="")
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def main() -> None:
    for line in table([row for benchmark in BENCHMARKS for row in benchmark()]):
        print(line)


if __name__ == "__main__":
    main()
