"""A real multi-node Ray cluster on 127.0.0.1 for the `ray` backend's tests (`pytest.mark.ray`).

A head without slots and nodes each with `ce_slot` (`ray.cluster_utils.Cluster`), every Ray
file in a directory of the test's own (never `ray stop`: that stops every Ray on the machine).
Commits made on the nodes and here have a fixed identity and dates, so that a run through Ray
and a local run make the same SHAs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "ce test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+00:00",
    "GIT_COMMITTER_NAME": "ce test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05+00:00",
}
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # else Ray rewrites 127.0.0.1 to the host's address
    "RAY_worker_niceness": "0",  # else agents inherit nice 15
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # token authentication would write ~/.ray/auth_token
}
_STORE = 80 * 1024 * 1024
# A node taken away is marked dead in a few seconds, not Ray's default 30 or so, and one slow
# heartbeat on a loaded machine is not a death.
HEALTH_CHECK = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 4,
}


@dataclass
class LoopbackCluster:
    cluster: Any
    tmpdir: Path
    nodes: list[Any]

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self, slots: int = 2, env: Mapping[str, str] | None = None) -> Any:
        node = self.cluster.add_node(
            num_cpus=1,
            resources={"ce_slot": slots},
            object_store_memory=_STORE,
            env_vars=dict(env) if env else None,
        )
        self.nodes.append(node)
        return node

    def node(self, node_id: str) -> Any:
        return next(node for node in self.nodes if node.node_id == node_id)

    def remove_node(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)

    def kill_actor(self, name: str) -> None:
        """Kill one of ce's actors (its worker dies; the shim then stops its agent)."""
        import ray

        ray.kill(ray.get_actor(name, namespace="ce"), no_restart=True)

    def start_actor(self, name: str) -> None:
        """A detached actor of ce's named `name` that never got a PRP."""
        import ray

        from ce.run.backends.ray_node import NodeLaunch

        actor = ray.remote(NodeLaunch).options(
            name=name, namespace="ce", lifetime="detached", num_cpus=0
        )
        ray.get(actor.remote(name).where.remote(), timeout=60)  # type: ignore[attr-defined]


def environment() -> dict[str, str]:
    """What `ce` and the nodes run with: no stray GIT_* variables, the fixed identity."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return kept | IDENTITY | RAY_ENV


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LoopbackCluster]:
    # Short: Ray's socket paths must fit in 107 bytes.
    tmpdir = Path(tempfile.mkdtemp(prefix="ce-ray-", dir="/tmp"))
    saved = dict(os.environ)
    wanted = environment() | {"RAY_TMPDIR": str(tmpdir), "TMPDIR": str(tmpdir)}
    os.environ.clear()
    os.environ.update(wanted)  # read when Ray is imported
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args={
                "num_cpus": 0,
                "object_store_memory": _STORE,
                "include_dashboard": False,
                "_system_config": HEALTH_CHECK,
            },
        )
        test_cluster = LoopbackCluster(cluster=cluster, tmpdir=tmpdir, nodes=[])
        for _ in range(2):
            test_cluster.add_node()
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)  # the tests' own driver
        yield test_cluster
    finally:
        try:
            ray.shutdown()
            if cluster is not None:
                cluster.shutdown()  # type: ignore[no-untyped-call]
        finally:
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(tmpdir, ignore_errors=True)


def run_ce(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m ce ARGS` as a user types it, with the fixed identity."""
    return subprocess.run(
        [sys.executable, "-m", "ce", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_ce(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m ce ARGS` left running; its output in `output(cwd)`."""
    with output(cwd).open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ce", *args],
            cwd=cwd,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def output(cwd: Path) -> Path:
    return cwd.parent / f"{cwd.name}.ce-output"


def journal(repo: Path, batch: str = "7") -> list[dict[str, Any]]:
    path = repo / ".ce" / "tmp" / f"batch-{batch}.journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(what: str, found: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout} s")


def facts(repo: Path, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in journal(repo) if entry.get("fact") == kind]


def processes(pattern: str) -> list[str]:
    """The command lines running now that contain `pattern`."""
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [
        line for line in listing.stdout.splitlines() if pattern in line and "ps -eo" not in line
    ]


def ray_actors_of(cluster: LoopbackCluster, batch: str) -> list[str]:
    """The live named actors of a batch."""
    import ray

    listed = ray.util.list_named_actors(all_namespaces=True)
    names = (actor["name"] for actor in listed if actor["namespace"] == "ce")
    return sorted(name for name in names if name.startswith(f"{batch}/"))
