"""Scheduling: a 24-PRP, 3-level DAG with lognormal durations on 6 slots, `stages` vs `eager`.

Each PRP's script sleeps its duration (median ~1 s, sigma 0.6) and writes one file. The figure
is the makespan (the batch's own elapsed time, from its summary) over the lower bound
max(critical path, total work / slots), for each mode, measured side by side in one run.
Estimates (`estimated_hours`) are the true durations, so `eager` can order longest first.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import tempfile
from pathlib import Path

from bench import Row, run_ce

LEVELS = 3
PER_LEVEL = 8
SLOTS = 6
MEDIAN = 1.0
SIGMA = 0.6
SEED = 43
TARGET = 1.15
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
CONFIG = """\
executor = "script"
max_parallel = {slots}
auto_review = false
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = 1
"""


def dag(seed: int = SEED) -> tuple[dict[str, float], dict[str, list[str]]]:
    rng = random.Random(seed)
    durations: dict[str, float] = {}
    deps: dict[str, list[str]] = {}
    previous: list[str] = []
    for level in range(1, LEVELS + 1):
        current = [f"PRP-5.{level}.{i}" for i in range(1, PER_LEVEL + 1)]
        for prp_id in current:
            durations[prp_id] = round(MEDIAN * math.exp(rng.gauss(0, SIGMA)), 2)
            deps[prp_id] = rng.sample(previous, rng.randint(1, 2)) if previous else []
        previous = current
    return durations, deps


def lower_bound(durations: dict[str, float], deps: dict[str, list[str]]) -> float:
    finish: dict[str, float] = {}
    for prp_id, seconds in durations.items():  # levels come in order: dependencies are done
        finish[prp_id] = seconds + max((finish[d] for d in deps[prp_id]), default=0.0)
    return max(*finish.values(), sum(durations.values()) / SLOTS)


def _prp(prp_id: str, seconds: float, deps: list[str]) -> str:
    name = prp_id.replace(".", "_")
    return f"""---
prp_id: {prp_id}
title: Work {prp_id}
status: planning
batch_id: 5
estimated_hours: {seconds}
dependencies: {json.dumps(deps)}
files_modified: [{name}.txt]
---

# Work {prp_id}

## Implementation

### Phase 1: Work

```bash run
sleep {seconds}
printf 'done\\n' > {name}.txt
```
"""


def make_repo(parent: Path, durations: dict[str, float], deps: dict[str, list[str]]) -> Path:
    root = parent / "repo"
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for prp_id, seconds in durations.items():
        (prp_dir / f"{prp_id}.md").write_text(_prp(prp_id, seconds, deps[prp_id]), "utf-8")
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(CONFIG.format(slots=SLOTS), "utf-8")
    (root / ".gitignore").write_text(".ce/tmp/\n", "utf-8")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "initial")):
        subprocess.run(["git", *IDENTITY, *args], cwd=root, check=True, capture_output=True)
    return root


def makespan(mode: str, durations: dict[str, float], deps: dict[str, list[str]]) -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), durations, deps)
        _, summary = run_ce(root, "--batch", "5", "--schedule", mode)
        return float(summary["elapsed_seconds"])


def run() -> list[Row]:
    durations, deps = dag()
    bound = lower_bound(durations, deps)
    stages = makespan("stages", durations, deps)
    eager = makespan("eager", durations, deps)
    return [
        Row(
            name=f"scheduling: {len(durations)} PRPs, {LEVELS} levels, {SLOTS} slots",
            figures=f"bound {bound:.2f} s, stages {stages:.2f} s, eager {eager:.2f} s",
            ratio=f"stages {stages / bound:.2f}x, eager {eager / bound:.2f}x (target eager "
            f"<= {TARGET}x)",
            verdict="ok" if eager / bound <= TARGET and eager < stages else "OVER",
        )
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
