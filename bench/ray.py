"""`--backend ray` against the local backend: 12 PRPs of sleep-based work.

Local: 2 slots on this machine (`max_parallel = 2`). Ray: a loopback cluster of 3 nodes with 2
`ce_slot`s each (`ray.cluster_utils.Cluster`, started once for all rounds, head without slots),
`max_parallel = 6`. Each round runs both on fresh copies of one repository.

- wall: seconds for the whole batch; the ratio is local's over Ray's (ideal: 3x, the slots).
- dispatch overhead per PRP: the slot-seconds a PRP holds beyond its sleep,
  (wall x slots - PRPs x sleep) / PRPs: the worktree, the launch, the shipping, the validation,
  the merge, as the batch pays for them.
- launch latency: from the PRP's worktree intent to its `launched` fact in the journal (Ray:
  the actor on a node, the branch bundle, the node's clone), median over the PRPs.

All three nodes share this machine's cores with the coordinator: the figures are what one
machine can say about the dispatch, not what a real cluster gains.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import Row, rounds, run_ce, spread
from bench.overhead import CONFIG, IDENTITY

PRPS = 12
SLEEP = 8.0  # long enough for the slots to matter next to a dispatch of a few seconds
LOCAL_SLOTS = 2
NODES, SLOTS_PER_NODE = 3, 2
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_worker_niceness": "0",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # token authentication would write ~/.ray/auth_token
}
_STORE = 80 * 1024 * 1024


def _prp(i: int) -> str:
    return f"""---
prp_id: PRP-9.{i}
title: Sleep {i}
status: planning
batch_id: 9
files_modified: [f{i}.txt]
---

# Sleep {i}

## Implementation

### Phase 1: Sleep

```bash run
sleep {SLEEP}
printf 'x\\n' > f{i}.txt
```
"""


def _repo(root: Path, parallel: int) -> Path:
    repo = root / "repo"
    (repo / "PRPs" / "feature-requests").mkdir(parents=True)
    (repo / ".ce").mkdir()
    (repo / ".ce" / "config.toml").write_text(CONFIG.format(parallel=parallel))
    for i in range(1, PRPS + 1):
        (repo / "PRPs" / "feature-requests" / f"PRP-9.{i}-sleep.md").write_text(_prp(i))
    (repo / ".gitignore").write_text(".ce/tmp/\n")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "init")):
        subprocess.run(["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True)
    return repo


def _launch_latency(repo: Path) -> float:
    journal = repo / ".ce" / "tmp" / "batch-9.journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    asked = {e["prp"]: float(e["t"]) for e in entries if e.get("intent") == "worktree"}
    launched = {e["prp"]: float(e["t"]) for e in entries if e.get("fact") == "launched"}
    return statistics.median(launched[prp] - asked[prp] for prp in launched)


@contextmanager
def _cluster() -> Iterator[str]:
    tmpdir = Path(tempfile.mkdtemp(prefix="ce-ray-bench-", dir="/tmp"))
    saved = dict(os.environ)
    os.environ.update(RAY_ENV | {"RAY_TMPDIR": str(tmpdir)})  # read when Ray is imported
    from ray.cluster_utils import Cluster

    cluster: Any = None
    try:
        cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args={"num_cpus": 0, "object_store_memory": _STORE},
        )
        for _ in range(NODES):
            cluster.add_node(
                num_cpus=1, resources={"ce_slot": SLOTS_PER_NODE}, object_store_memory=_STORE
            )
        cluster.wait_for_nodes()
        yield str(cluster.address)
    finally:
        if cluster is not None:
            cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmpdir, ignore_errors=True)


def _overhead(wall: float, slots: int) -> float:
    return (wall * slots - PRPS * SLEEP) / PRPS


def run() -> list[Row]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | RAY_ENV
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    latency: dict[str, list[float]] = {"local": [], "ray": []}
    with _cluster() as address:
        for number in range(1, rounds() + 1):
            for backend, slots in (("local", LOCAL_SLOTS), ("ray", NODES * SLOTS_PER_NODE)):
                root = Path(tempfile.mkdtemp(prefix="ce-bench-ray-"))
                try:
                    repo = _repo(root, slots)
                    args = ["--batch", "9", "--backend", backend, "--ray-address", address]
                    seconds, _ = run_ce(repo, *args, env=env)
                    walls[backend].append(seconds)
                    latency[backend].append(_launch_latency(repo))
                finally:
                    shutil.rmtree(root, ignore_errors=True)
                print(f"ray round {number}: {backend} {seconds:.1f} s", file=sys.stderr)
    ratios = [a / b for a, b in zip(walls["local"], walls["ray"], strict=True)]
    local_over = [_overhead(w, LOCAL_SLOTS) for w in walls["local"]]
    ray_over = [_overhead(w, NODES * SLOTS_PER_NODE) for w in walls["ray"]]
    return [
        Row(
            name=f"ray: {PRPS} PRPs of {SLEEP:g} s, {NODES} nodes x {SLOTS_PER_NODE} vs local x "
            f"{LOCAL_SLOTS}",
            figures=f"local: {spread(walls['local'])} s, ray: {spread(walls['ray'])} s",
            ratio=f"{spread(ratios)}x faster (ideal {NODES * SLOTS_PER_NODE // LOCAL_SLOTS}x)",
            verdict="",
        ),
        Row(
            name="ray: dispatch overhead per PRP (slot-seconds beyond its sleep)",
            figures=f"local: {spread(local_over)} s, ray: {spread(ray_over)} s",
            ratio=f"launch latency local {spread(latency['local'])} s, "
            f"ray {spread(latency['ray'])} s",
            verdict="",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
