"""Planning scales linearly: 1,000 and 10,000 synthetic PRPs (~3 dependencies, ~2 files each).

Three rows: the time (best of several runs: wall clock, which the limit applies to, and the
CPU time of the same runs, which a busy machine's waits for a core do not inflate); the work
(Python function calls, which do not depend on the machine or its load); and, for reference,
the time of the least any planner must do: one pass indexing every PRP's id, files and
dependencies. The 1k batch and its plan (about 3 MiB) stay in the CPU caches between runs, the
10k ones (about 26 MiB) do not, so that pass too costs more than 10x per 10x PRPs, and the
planner's time ratio is to be read against it.
"""

from __future__ import annotations

import gc
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from bench import Row
from ce.plan.batch import plan_batch
from ce.prp.model import Phase, PlanHints, Prp, StatusClass

SIZES = (1_000, 10_000)
MAX_RATIO = 12.0  # 10x the PRPs may cost at most 12x
MAX_LARGE_SECONDS = 1.0
SEED = 20_260_301
_DEPENDENCY_WINDOW = 200  # dependencies point at recent PRPs, which makes deep graphs
_MODULES_PER_DIRECTORY = 20  # bigger batches come from bigger code bases


def synthetic_batch(n: int, seed: int = SEED) -> list[Prp]:
    rng = random.Random(seed)
    return [_synthetic_prp(rng, i, n) for i in range(n)]


def _synthetic_prp(rng: random.Random, i: int, n: int) -> Prp:
    earlier = range(max(0, i - _DEPENDENCY_WINDOW), i)
    deps = rng.sample(earlier, min(len(earlier), rng.randint(0, 6)))
    hours = rng.choice((None, 1.0, 2.5, 4.0, 8.0))
    files = _files(rng, n)
    return Prp(
        id=f"PRP-99.{i}",
        path=Path(f"PRPs/PRP-99.{i}.md"),
        title=f"Synthetic PRP {i}",
        status="planning",
        status_class=StatusClass.READY,
        dependencies=tuple(f"PRP-99.{d}" for d in deps),
        files=files,
        hints=PlanHints(estimated_hours=hours, order=rng.choice((None, 1, 2, 3))),
        phases=tuple(Phase(number=k, title=f"Step {k}") for k in (1, 2, 3)),
    )


def _files(rng: random.Random, n: int) -> tuple[str, ...]:
    directories = n // _MODULES_PER_DIRECTORY
    if rng.random() < 0.01:  # a few PRPs declare a whole package
        return (f"src/pkg{rng.randrange(directories)}/*.py",)
    modules = (rng.randrange(n) for _ in range(rng.randint(1, 3)))
    return tuple(f"src/pkg{m % directories}/mod{m}.py" for m in modules)


class Seconds(NamedTuple):
    wall: float
    cpu: float  # this thread's CPU time: without the waits for a core on a busy machine


def best_seconds(action: Callable[[], object], repeat: int) -> Seconds:
    """The best of `repeat` runs: the one least disturbed by whatever else the machine does."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        gc.collect()  # each run pays for its own garbage only
        start, start_cpu = time.perf_counter(), time.thread_time()
        action()
        cpu = min(cpu, time.thread_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start)
    return Seconds(wall, cpu)


def function_calls(action: Callable[[], object]) -> int:
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


def index_pass(prps: list[Prp]) -> object:
    """The reference: one linear pass, no planning."""
    by_id = {prp.id: prp for prp in prps}
    users: dict[str, list[str]] = defaultdict(list)
    dependents: dict[str, list[str]] = defaultdict(list)
    for prp in prps:
        for path in prp.files:
            users[path].append(prp.id)
        for dep in prp.dependencies:
            dependents[dep].append(prp.id)
    return by_id, users, dependents


def run() -> list[Row]:
    small, large = (synthetic_batch(n) for n in SIZES)
    small_s = best_seconds(lambda: plan_batch(small), repeat=20)
    large_s = best_seconds(lambda: plan_batch(large), repeat=5)
    small_calls = function_calls(lambda: plan_batch(small))
    large_calls = function_calls(lambda: plan_batch(large))
    small_ref = best_seconds(lambda: index_pass(small), repeat=20).wall
    large_ref = best_seconds(lambda: index_pass(large), repeat=5).wall
    stages = len(plan_batch(large).plan.stages)
    return [
        _within(
            "plan_batch time",
            f"1k: {small_s.wall:.3f} s, 10k: {large_s.wall:.3f} s ({stages} stages); "
            f"CPU {small_s.cpu:.3f} s, {large_s.cpu:.3f} s ({large_s.cpu / small_s.cpu:.1f}x)",
            large_s.wall / small_s.wall,
            large_s.wall < MAX_LARGE_SECONDS,
        ),
        _within(
            "plan_batch work",
            f"1k: {small_calls:,} calls, 10k: {large_calls:,} calls",
            large_calls / small_calls,
        ),
        Row(
            name="reference: index pass",
            figures=f"1k: {small_ref * 1000:.2f} ms, 10k: {large_ref * 1000:.2f} ms",
            ratio=f"{large_ref / small_ref:.1f}x",
            verdict="",
        ),
    ]


def _within(name: str, figures: str, ratio: float, fast_enough: bool = True) -> Row:
    ok = ratio <= MAX_RATIO and fast_enough
    return Row(
        name=name,
        figures=figures,
        ratio=f"{ratio:.1f}x (limit {MAX_RATIO:g}x)",
        verdict="ok" if ok else "OVER",
    )
