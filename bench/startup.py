"""Start-up and parsing (issue 17, (d) and (e)): whole processes, as a user starts them.

(d) `ce --help`, `ce status` (a repository with no batch) and `ce analyze-deps` on 3,000 items,
each against `python -c pass` started just before it in the same round, with ce's bytecode
compiled as an installed package has it. (e) `ce batch-exe --batch N --dry-run --json` on
1,000 and 10,000 generated PRP files, and the 1,000 again with the pure-Python YAML loader
(`CE_PURE_YAML=1`) beside it. Every figure is the median of the rounds with its min-max, wall
and CPU (user + system, children included); ratios are taken round by round, so a machine
whose speed drifts between rounds still compares like with like. The limits are judged on
CPU, which a machine shared with other work does not inflate.

With `CE_BENCH_BASELINE=<src>` the ce found there runs in the same rounds, each command just
after this one's, and a row per figure gives the CPU of this one over the baseline's, round by
round.

`uv run python -m bench.startup` runs it alone.
"""

from __future__ import annotations

import compileall
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from bench import BASELINE_ENV, Row, baseline_env

ROUNDS = 5
DRY_RUN_ROUNDS = 3  # a 10k round takes tens of seconds
ANALYZE_ITEMS = 3_000
DRY_RUN_SIZES = (1_000, 10_000)
MAX_HELP_SECONDS = 0.25
MAX_ANALYZE_SECONDS = 0.12
MAX_DRY_RUN_SECONDS = 4.0  # for 10,000 PRP files
BATCH = "77"


def spread(values: Sequence[float], unit: str = " s", digits: int = 3) -> str:
    """`median (min-max)` of the rounds."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f}{unit} ({low:.{digits}f}-{high:.{digits}f})"


class Took(NamedTuple):
    wall: float
    cpu: float  # user + system of the process and its children: what a busy machine's waits
    # for a core do not inflate


def seconds(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Took:
    """Wall and CPU seconds of one whole process, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed ({done.returncode}):\n{done.stderr.decode()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Took(elapsed, cpu)


def compile_ce() -> None:
    """ce's bytecode, as an installed package has it (an editable checkout where
    PYTHONDONTWRITEBYTECODE is set would otherwise compile every module at every start)."""
    import ce

    compileall.compile_dir(Path(ce.__file__).parent, quiet=1)
    if baseline := os.environ.get(BASELINE_ENV):
        compileall.compile_dir(Path(baseline) / "ce", quiet=1)


def versions() -> dict[str, dict[str, str] | None]:
    """This ce, and the baseline's when `CE_BENCH_BASELINE` names one: label -> environment."""
    return {"": None} | ({"before: ": env} if (env := baseline_env()) else {})


def versus_rows(name: str, cpu: dict[str, list[float]]) -> list[Row]:
    """This ce's CPU over the baseline's, round by round, when there is a baseline."""
    if "before: " not in cpu:
        return []
    ratios = [a / b for a, b in zip(cpu[""], cpu["before: "], strict=True)]
    return [
        Row(
            name=f"after / before: {name}",
            figures=f"cpu {spread(cpu[''])} vs {spread(cpu['before: '])}",
            ratio=f"{spread(ratios, 'x', 2)}",
            verdict="",
        )
    ]


def ce(*args: str) -> list[str]:
    return [sys.executable, "-m", "ce", *args]


def _git(root: Path, *args: str) -> None:
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
    subprocess.run(["git", *identity, *args], cwd=root, check=True, capture_output=True)


def make_prp_repo(root: Path, count: int, seed: int = 17) -> Path:
    """A repository with `count` PRP files of batch 77: a few dependencies and files each."""
    rng = random.Random(seed)
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for i in range(count):
        deps = sorted(rng.sample(range(max(0, i - 200), i), min(i, rng.randint(0, 3))))
        files = [f"src/pkg{rng.randrange(count // 20)}/m{rng.randrange(count)}.py"]
        (prp_dir / f"PRP-{BATCH}.{i}-generated.md").write_text(
            f"---\nprp_id: PRP-{BATCH}.{i}\ntitle: Generated PRP {i}\nstatus: planning\n"
            f"complexity: {rng.choice(['low', 'medium', 'high'])}\n"
            f"estimated_hours: {rng.choice(['1.5', '3-5', '8'])}\n"
            f"dependencies: [{', '.join(f'PRP-{BATCH}.{d}' for d in deps)}]\n"
            "files_modified:\n" + "".join(f"  - {f}\n" for f in files) + "---\n\n"
            f"# Generated PRP {i}\n\n## Implementation\n\n### Phase 1: Build (15 min)\n\nDo it.\n",
            encoding="utf-8",
        )
    # The built-in executor: a dry run now runs the readiness checks, and a missing agent CLI
    # would make it exit 2 as the real run would.
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text('executor = "script"\n', encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "PRPs")
    return root


def make_items(path: Path, count: int, seed: int = 17) -> Path:
    rng = random.Random(seed)
    items = [
        {
            "id": f"PRP-9.{i}",
            "dependencies": [f"PRP-9.{d}" for d in rng.sample(range(max(0, i - 50), i), min(i, 2))],
            "files": [f"src/m{rng.randrange(count // 4)}.py"],
        }
        for i in range(count)
    ]
    path.write_text(json.dumps({"items": items}), encoding="utf-8")
    return path


def startup_rows(tmp: Path) -> list[Row]:
    repo = tmp / "empty"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    items = make_items(tmp / "items.json", ANALYZE_ITEMS)
    commands = {
        "ce --help": ce("--help"),
        "ce status": ce("status"),
        f"ce analyze-deps ({ANALYZE_ITEMS:,} items)": ce("analyze-deps", str(items)),
    }
    limits = {"ce --help": MAX_HELP_SECONDS, "ce analyze-deps": MAX_ANALYZE_SECONDS}
    base: list[Took] = []
    times: dict[tuple[str, str], list[Took]] = {
        (version, name): [] for version in versions() for name in commands
    }
    for _ in range(ROUNDS):
        for name, argv in commands.items():
            for version, env in versions().items():
                base.append(seconds([sys.executable, "-c", "pass"], repo))
                times[version, name].append(seconds(argv, repo, env))
    rows = []
    for name in commands:
        limit = next((v for k, v in limits.items() if name.startswith(k)), None)
        for version in versions():
            took = times[version, name]
            median_cpu = statistics.median(t.cpu for t in took)
            rows.append(
                Row(
                    name=f"{version}start-up: {name} vs python -c pass",
                    figures=f"wall {spread([t.wall for t in took])}, cpu "
                    f"{spread([t.cpu for t in took])}; python -c pass cpu "
                    f"{spread([b.cpu for b in base])}",
                    ratio=f"cpu {spread([t.cpu for t in took])}"
                    + (f" (limit {limit:g} s, judged on cpu)" if limit else ""),
                    verdict="" if limit is None else "ok" if median_cpu <= limit else "OVER",
                )
            )
        rows += versus_rows(name, {v: [t.cpu for t in times[v, name]] for v in versions()})
    return rows


def dry_run_rows(tmp: Path) -> list[Row]:
    started = time.perf_counter()
    repos = {n: make_prp_repo(tmp / f"prps-{n}", n) for n in DRY_RUN_SIZES}
    made = time.perf_counter() - started
    dry = ce("batch-exe", "--batch", BATCH, "--dry-run", "--json")
    small, large = DRY_RUN_SIZES
    rows: list[Row] = []
    cpu: dict[str, dict[str, list[float]]] = {"small": {}, "large": {}}
    for version, env in versions().items():
        pure_env = {**(env or os.environ), "CE_PURE_YAML": "1"}
        times: dict[str, list[Took]] = {"small": [], "large": [], "pure": []}
        for _ in range(DRY_RUN_ROUNDS):
            times["small"].append(seconds(dry, repos[small], env))
            times["pure"].append(seconds(dry, repos[small], pure_env))
            times["large"].append(seconds(dry, repos[large], env))
        rows += _dry_run_rows(version, times, made)
        for kind, by_version in cpu.items():
            by_version[version] = [t.cpu for t in times[kind]]
    for kind, size in (("small", small), ("large", large)):
        rows += versus_rows(f"dry run, {size:,} PRP files", cpu[kind])
    return rows


def _dry_run_rows(version: str, times: dict[str, list[Took]], made: float) -> list[Row]:
    small, large = DRY_RUN_SIZES
    small_cpu, large_cpu = ([t.cpu for t in times[k]] for k in ("small", "large"))
    pure_cpu = [t.cpu for t in times["pure"]]
    scale = [b / a for a, b in zip(small_cpu, large_cpu, strict=True)]
    speedup = [p / c for c, p in zip(small_cpu, pure_cpu, strict=True)]
    median = statistics.median(large_cpu)

    def both(kind: str) -> str:
        took = times[kind]
        return f"wall {spread([t.wall for t in took])}, cpu {spread([t.cpu for t in took])}"

    return [
        Row(
            name=f"{version}dry run: {small:,} and {large:,} PRP files (made in {made:.0f} s)",
            figures=f"{small // 1000}k: {both('small')}; {large // 1000}k: {both('large')}",
            ratio=f"cpu {spread(scale, 'x', 1)} for 10x the files "
            f"(limit {MAX_DRY_RUN_SECONDS:g} s at {large // 1000}k, judged on cpu)",
            verdict="ok" if median <= MAX_DRY_RUN_SECONDS else "OVER",
        ),
        Row(
            name=f"{version}dry run: {small:,} PRP files, C YAML loader vs pure Python",
            figures=f"C: {both('small')}; pure: {both('pure')}",
            ratio=f"pure takes {spread(speedup, 'x', 1)} the cpu",
            verdict="",
        ),
    ]


def run() -> list[Row]:
    compile_ce()
    with tempfile.TemporaryDirectory(prefix="ce-bench-startup-") as tmp:
        return startup_rows(Path(tmp)) + dry_run_rows(Path(tmp))


if __name__ == "__main__":
    for row in run():
        print(row)
