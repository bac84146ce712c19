"""The overhead of `ce` itself: 50 one-file PRPs through the whole pipeline vs a plain git script.

Both sides do the same work per PRP: a worktree and branch, one file written and committed, a
`--no-ff` merge into main, the worktree and branch removed. `ce` also plans, validates (L1-L4 with
empty commands), checks every merge in an integration step, commits the PRP status and keeps its
checkpoint and journal. Measured side by side in one run, on fresh repositories, in ROUNDS
rounds (plain, ce -j1, ce -j4 in turn): each ratio is taken round by round, then its median and
min-max. The git processes and fsyncs per PRP come from one more run of each, with the counters
of `bench.counting` on (not timed: the logging git costs a process per call).

With `CE_BENCH_BASELINE=<src>` every ce run is repeated with the ce found there, in the same
rounds: the rows then read before and after.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from bench import Row, baseline_env, rounds, run_ce, spread
from bench.counting import Counters

PRPS = 50
TARGETS = {1: 1.15, 4: 1.0}  # ce / plain, at -j1 and -j4 (issue 17)
MAX_GIT_PER_PRP = 12
MAX_FSYNCS_PER_PRP = 3
CONFIG = """\
executor = "script"
max_parallel = {parallel}
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = 1
"""
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")

PLAIN_SCRIPT = r"""
set -euo pipefail
cd "$1"
for i in $(seq 1 "$2"); do
  wt="../plain-wt-$i"
  git worktree add -q --no-track -b "plain-$i" "$wt" main
  (cd "$wt" && printf 'x\n' > "f$i.txt" && git add -A \
    && git commit -q -m "PRP-9.$i: Phase 1 - Write")
  git merge -q --no-ff -m "Merge PRP-9.$i: Write" "plain-$i"
  git worktree remove "$wt"
  git branch -q -d "plain-$i"
done
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True)


def _prp(i: int) -> str:
    return f"""---
prp_id: PRP-9.{i}
title: Write f{i}
status: planning
batch_id: 9
files_modified: [f{i}.txt]
---

# Write f{i}

## Implementation

### Phase 1: Write

```bash run
printf 'x\\n' > f{i}.txt
```
"""


def make_repo(parent: Path, parallel: int, prps: int = PRPS) -> Path:
    root = parent / "repo"
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for i in range(1, prps + 1):
        (prp_dir / f"PRP-9.{i}-write.md").write_text(_prp(i), encoding="utf-8")
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(CONFIG.format(parallel=parallel), encoding="utf-8")
    (root / ".gitignore").write_text(".ce/tmp/\n", encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "bench")
    _git(root, "config", "user.email", "bench@example.invalid")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    return root


class Counted(NamedTuple):
    git: float  # git processes per PRP
    fsyncs: float  # fsyncs per PRP (the ce process and every Python child it started)


def time_ce(parallel: int, prps: int = PRPS, env: Mapping[str, str] | None = None) -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), parallel, prps)
        elapsed, _ = run_ce(root, "--batch", "9", env=env)
        return elapsed


def count_ce(parallel: int, env: Mapping[str, str] | None = None) -> Counted:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), parallel)
        (Path(tmp) / "counters").mkdir()
        counters = Counters(Path(tmp) / "counters")
        run_ce(root, "--batch", "9", env=counters.env(env))
        return Counted(git=len(counters.git_calls()) / PRPS, fsyncs=counters.fsyncs() / PRPS)


def _run_plain(root: Path, prps: int, env: Mapping[str, str] | None = None) -> float:
    bash = shutil.which("bash") or "bash"
    start = time.perf_counter()
    command = [bash, "-c", PLAIN_SCRIPT, "plain", str(root), str(prps)]
    subprocess.run(command, check=True, env=None if env is None else dict(env))
    return time.perf_counter() - start


def time_plain(prps: int = PRPS) -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        return _run_plain(make_repo(Path(tmp), 1, prps), prps)


def count_plain() -> float:
    """The plain loop's git processes per PRP: the floor the figures compare with."""
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), 1)
        (Path(tmp) / "counters").mkdir()
        counters = Counters(Path(tmp) / "counters")
        _run_plain(root, PRPS, counters.env())
        return len(counters.git_calls()) / PRPS


def run() -> list[Row]:
    versions = {"": None} | ({"before: ": env} if (env := baseline_env()) else {})
    plain: list[float] = []
    ratios: dict[tuple[str, int], list[float]] = {(v, j): [] for v in versions for j in TARGETS}
    for _ in range(rounds()):
        plain.append(time_plain())
        for version, env in versions.items():
            for parallel in TARGETS:
                ratios[version, parallel].append(time_ce(parallel, env=env) / plain[-1])
                ratio = ratios[version, parallel][-1]
                print(f"overhead round: {version}-j{parallel} {ratio:.2f}x", file=sys.stderr)
    rows = []
    floor = count_plain()
    for version, env in versions.items():
        at = {j: ratios[version, j] for j in TARGETS}
        within = all(statistics.median(at[j]) <= TARGETS[j] for j in TARGETS)
        rows.append(
            Row(
                name=f"{version}overhead: {PRPS} PRPs, ce / plain git loop",
                figures=f"plain {spread(plain)} s; ratios pair by pair, {len(plain)} rounds",
                ratio=", ".join(f"{spread(at[j])}x at -j{j}" for j in TARGETS)
                + f" (targets {TARGETS[1]}x, {TARGETS[4]}x)",
                verdict="ok" if within else "OVER",
            )
        )
        counted = {4: count_ce(4, env)}  # the default; -j1 starts the same processes
        worst = Counted(*(max(c[i] for c in counted.values()) for i in range(2)))
        rows.append(
            Row(
                name=f"{version}overhead: git processes and fsyncs per PRP",
                figures=", ".join(
                    f"-j{j}: {c.git:.1f} git, {c.fsyncs:.1f} fsyncs" for j, c in counted.items()
                )
                + f" (plain loop: {floor:.1f} git)",
                ratio=f"{worst.git:.1f} git, {worst.fsyncs:.1f} fsyncs per PRP "
                f"(limits {MAX_GIT_PER_PRP}, {MAX_FSYNCS_PER_PRP})",
                verdict="ok"
                if worst.git <= MAX_GIT_PER_PRP and worst.fsyncs <= MAX_FSYNCS_PER_PRP
                else "OVER",
            )
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
