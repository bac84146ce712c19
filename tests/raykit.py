"""A real Ray on this machine for tests: `local_ray()` starts a head node (and more nodes on
request) as a `ray.cluster_utils.Cluster`, connects this process as its driver, and at the end
removes only the nodes it started (never `ray stop`, which stops every Ray on the machine).

What keeps it apart from any other Ray here, and small: a job-local RAY_TMPDIR (short, for the
sockets' path limit) that holds the session and the cluster's address file; nodes on 127.0.0.1
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, else Ray swaps in the host's address); no token
authentication (it would write ~/.ray/auth_token); no usage stats; no `uv run` runtime env (Ray
would package the checkout for every worker); a small object store; no dashboard. Workers start
with `RAY_worker_niceness=0`, as the README asks of real nodes (else agents run at nice 15), and
find the test modules (tests/ is on their PYTHONPATH): a test's remote functions and actors run.

    with local_ray(nodes=[{"ce_slot": 2}, {"ce_slot": 2}]) as cluster:
        node = cluster.add_node({"ce_slot": 2})  # later: cluster.remove_node(node)
        subprocess.run([...], env=cluster.env)  # another driver: ray.init(cluster.address)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raycluster import HEALTH_CHECK

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
NODE_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_worker_niceness": "0",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_DEDUP_LOGS": "0",
}
TESTS = Path(__file__).resolve().parent
# Ray reads some of them once, when it is imported (127.0.0.1 or the host's address): before.
os.environ.update(NODE_ENV)

import ray  # noqa: E402  (re-exported: a test imports it from here, so in this order)
from ray.cluster_utils import Cluster  # noqa: E402

__all__ = ["HEALTH_CHECK", "NODE_ENV", "LocalRay", "local_ray", "ray"]


@dataclass
class LocalRay:
    """A running test cluster; this process is connected to it as a driver."""

    cluster: Cluster
    temp_dir: Path
    env: dict[str, str]  # for another driver process: the same RAY_* settings
    nodes: list[Any] = field(default_factory=list)  # the nodes besides the head

    @property
    def address(self) -> str:
        """The GCS address: `ray.init(address=...)` from another process."""
        address: str = self.cluster.address
        return address

    def add_node(self, resources: Mapping[str, float] | None = None, *, num_cpus: int = 1) -> Any:
        """Start one more node with `num_cpus` and `resources` ({"ce_slot": 2}); wait for it."""
        node = self.cluster.add_node(
            num_cpus=num_cpus,
            resources=dict(resources or {}),
            object_store_memory=OBJECT_STORE_BYTES,
            node_ip_address="127.0.0.1",
        )
        self.nodes.append(node)
        return node

    def remove_node(self, node: Any, *, graceful: bool = False) -> None:
        """Take a node away (its raylet and workers are killed unless `graceful`) and wait until
        the cluster knows: until then it may still place a new actor there, which then dies."""
        self.nodes.remove(node)
        self.cluster.remove_node(node, allow_graceful=graceful)
        deadline = time.monotonic() + 60
        while any(seen["NodeID"] == node.node_id and seen["Alive"] for seen in _nodes()):
            if time.monotonic() > deadline:
                raise AssertionError(f"node {node.node_id} still alive 60 s after its removal")
            time.sleep(0.1)


def _nodes() -> list[dict[str, Any]]:
    """Every node the cluster has known, alive or not, as this driver sees them."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return nodes


@contextlib.contextmanager
def local_ray(
    *,
    head: Mapping[str, float] | None = None,
    nodes: Sequence[Mapping[str, float]] = (),
    num_cpus: int = 2,
) -> Iterator[LocalRay]:
    """A head node with `num_cpus` and `head` resources, plus one node per entry of `nodes`
    (1 CPU each and those resources); this process is its driver until the end."""
    if ray._private.ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("ray was imported before raykit: it would use the host's address")
    temp_dir = Path(tempfile.mkdtemp(prefix="ce-ray-", dir="/tmp"))
    (temp_dir / "ray").mkdir()  # Ray's own default below RAY_TMPDIR, for the address file
    # Workers import the functions and classes a test sends them by module name: from tests/.
    path = [str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**NODE_ENV, "RAY_TMPDIR": str(temp_dir), "PYTHONPATH": os.pathsep.join(path)}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the nodes' processes inherit it, and so do their workers
    cluster = None
    try:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": num_cpus,
                "resources": dict(head or {}),
                "object_store_memory": OBJECT_STORE_BYTES,
                "include_dashboard": False,
                "node_ip_address": "127.0.0.1",
                "temp_dir": str(temp_dir / "ray"),
                "_system_config": HEALTH_CHECK,
            },
        )
        running = LocalRay(cluster, temp_dir, {**os.environ, **env})
        for resources in nodes:
            running.add_node(resources)
        ray.init(address=cluster.address, log_to_driver=False)
        yield running
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()  # type: ignore[no-untyped-call]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)
