"""The overhead of `ce` itself: 50 one-file PRPs through the whole pipeline vs a plain git script.

Both sides do the same work per PRP: a worktree and branch, one file written and committed, a
`--no-ff` merge into main, the worktree and branch removed. `ce` also plans, validates (L1-L4 with
empty commands), checks every merge in an integration step, commits the PRP status and keeps its
checkpoint and journal. Measured side by side in one run, on fresh repositories.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import Row, run_ce

PRPS = 50
MAX_RATIO = 1.5
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


def make_repo(parent: Path, parallel: int) -> Path:
    root = parent / "repo"
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for i in range(1, PRPS + 1):
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


def time_ce(parallel: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), parallel)
        elapsed, _ = run_ce(root, "--batch", "9")
        return elapsed


def time_plain() -> float:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), 1)
        bash = shutil.which("bash") or "bash"
        start = time.perf_counter()
        subprocess.run([bash, "-c", PLAIN_SCRIPT, "plain", str(root), str(PRPS)], check=True)
        return time.perf_counter() - start


def run() -> list[Row]:
    plain = time_plain()
    serial = time_ce(1)
    parallel = time_ce(4)
    ratio = serial / plain
    return [
        Row(
            name=f"overhead: {PRPS} PRPs, ce vs plain git script",
            figures=f"plain {plain:.2f} s, ce -j1 {serial:.2f} s, ce -j4 {parallel:.2f} s",
            ratio=f"{ratio:.2f}x at -j1, {parallel / plain:.2f}x at -j4 (limit {MAX_RATIO}x)",
            verdict="ok" if ratio <= MAX_RATIO else "OVER",
        )
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
