"""A real multi-node Ray cluster on 127.0.0.1 for the tests (`pytest.mark.ray`): the one way
they start one, `local_ray()`, which conftest's `ray_cluster` fixture uses once for both Ray
modules (one xdist worker runs them, conftest's scheduler).

A head without slots, and nodes with `ce_slot` (`ray.cluster_utils.Cluster`); this process is
connected as a driver (the shim tests send it tasks and actors; the backend tests run `ce` in
subprocesses, other drivers, with `cluster.address`). At the end only the nodes it started are
removed (never `ray stop`, which stops every Ray on the machine).

What keeps it apart from any other Ray here, and small: a job-local RAY_TMPDIR (short, for the
sockets' path limit), also the nodes' TMPDIR (their checkouts go there); nodes on 127.0.0.1
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, else Ray swaps in the host's address); no token
authentication (it would write ~/.ray/auth_token); no usage stats; no `uv run` runtime env (Ray
would package the checkout for every worker); a small object store; no dashboard, autoscaler
monitor or log monitor (each a Python process importing Ray, for nothing the tests use). Nodes
start with `RAY_worker_niceness=0`, as the README asks of real nodes (else agents run at nice
15), with the fixed commit identity and dates of `environment()` (a run through Ray and a local
run make the same SHAs), tests/ on their PYTHONPATH (a test's remote functions and actors run
there) and `LocalRay.bin` on their PATH (a program a test puts there, every node has).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
NODE_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # else Ray rewrites 127.0.0.1 to the host's address
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_worker_niceness": "0",  # else agents inherit nice 15
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_AUTH_MODE": "disabled",  # token authentication would write ~/.ray/auth_token
    "RAY_DEDUP_LOGS": "0",
}
OBJECT_STORE_BYTES = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
# A node taken away is marked dead in a few seconds, not Ray's default 30 or so, and one slow
# heartbeat on a loaded machine is not a death.
HEALTH_CHECK = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 4,
}
TESTS = Path(__file__).resolve().parent
NAMESPACE = "ce"  # ce's actors' (ce.run.backends.ray_cluster.NAMESPACE)
# Ray reads some of them once, when it is imported (127.0.0.1 or the host's address): before.
os.environ.update(NODE_ENV)

pytest.importorskip("ray")
import ray  # noqa: E402  (re-exported: a test imports it from here, so in this order)
from ray.cluster_utils import Cluster  # noqa: E402

__all__ = ["LocalRay", "environment", "local_ray", "ray"]


def environment() -> dict[str, str]:
    """What `ce` and the nodes run with: no stray GIT_* variables, the fixed identity."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return kept | IDENTITY | NODE_ENV


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """This process's environment is `env` meanwhile: what a node's processes start with."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class LocalRay:
    """A running test cluster; this process is connected to it as a driver."""

    cluster: Cluster
    temp_dir: Path
    env: dict[str, str]  # the nodes', and another driver's (the same RAY_* settings)
    nodes: list[Any] = field(default_factory=list)  # the nodes besides the head

    @property
    def bin(self) -> Path:
        """A directory on the PATH of every node started with the cluster's environment."""
        return self.temp_dir / "bin"

    @property
    def address(self) -> str:
        """The GCS address: `ray.init(address=...)`, `--ray-address` from another process."""
        address: str = self.cluster.address
        return address

    def add_node(
        self,
        resources: Mapping[str, float] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> Any:
        """Start one more node with one CPU and `resources` (2 `ce_slot`s unless given), its
        processes with `env` besides the cluster's; wait for it (or, not `wait`, let it come up
        while the next one starts: `cluster.wait_for_nodes()`)."""
        with _environ(self.env | dict(env or {})):
            node = self.cluster.add_node(
                wait=False,
                num_cpus=1,
                resources=dict({"ce_slot": 2} if resources is None else resources),
                object_store_memory=OBJECT_STORE_BYTES,
                node_ip_address="127.0.0.1",
            )
        self.nodes.append(node)
        if wait:
            self.cluster.wait_for_nodes()
        return node

    def node(self, node_id: str) -> Any:
        return next(node for node in self.nodes if node.node_id == node_id)

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

    def actors_of(self, batch: str) -> list[str]:
        """The live actors of ce's batch `batch`."""
        listed = ray.util.list_named_actors(all_namespaces=True)
        names = (actor["name"] for actor in listed if actor["namespace"] == NAMESPACE)
        return sorted(name for name in names if name.startswith(f"{batch}/"))

    def kill_actor(self, name: str) -> None:
        """Kill one of ce's actors (its worker dies; the shim then stops its agent)."""
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)

    def start_actor(self, name: str) -> None:
        """A detached actor of ce's named `name` that never got a PRP."""
        from ce.run.backends.ray_node import NodeLaunch

        actor = ray.remote(NodeLaunch).options(
            name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=0
        )
        ray.get(actor.remote(name).where.remote(), timeout=60)  # type: ignore[attr-defined]


def _nodes() -> list[dict[str, Any]]:
    """Every node the cluster has known, alive or not, as this driver sees them."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return nodes


@contextlib.contextmanager
def local_ray(nodes: Sequence[Mapping[str, float]] = ({}, {})) -> Iterator[LocalRay]:
    """A head without CPUs or slots, plus one node per entry of `nodes` (one CPU, 2 `ce_slot`s
    and those resources); this process is its driver until the end."""
    if ray._private.ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("ray was imported before raykit: it would use the host's address")
    temp_dir = Path(tempfile.mkdtemp(prefix="ce-ray-", dir="/tmp"))
    (temp_dir / "ray").mkdir()  # Ray's own default below RAY_TMPDIR, for the address file
    # Workers import the functions and classes a test sends them by module name: from tests/.
    path = [str(TESTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    (temp_dir / "bin").mkdir()  # on every node's PATH: what a test installs on them all
    env = environment() | {
        "RAY_TMPDIR": str(temp_dir),
        "TMPDIR": str(temp_dir),
        "PYTHONPATH": os.pathsep.join(path),
        "PATH": os.pathsep.join([str(temp_dir / "bin"), os.environ.get("PATH", os.defpath)]),
    }
    cluster = None
    try:
        with _environ(env):
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 0,
                    "object_store_memory": OBJECT_STORE_BYTES,
                    "include_dashboard": False,
                    "no_monitor": True,  # no autoscaling here
                    "include_log_monitor": False,  # no driver shows the workers' output
                    "node_ip_address": "127.0.0.1",
                    "temp_dir": str(temp_dir / "ray"),
                    "_system_config": HEALTH_CHECK,
                },
            )
            ray.init(address=cluster.address, log_to_driver=False)
        running = LocalRay(cluster, temp_dir, env)
        for resources in nodes:
            running.add_node({"ce_slot": 2, **resources}, wait=False)
        cluster.wait_for_nodes()
        yield running
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()  # type: ignore[no-untyped-call]
        shutil.rmtree(temp_dir, ignore_errors=True)


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


def facts(repo: Path, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in journal(repo) if entry.get("fact") == kind]


def wait_for(what: str, found: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout} s")


def processes(pattern: str) -> list[str]:
    """The command lines running now that contain `pattern`."""
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [
        line for line in listing.stdout.splitlines() if pattern in line and "ps -eo" not in line
    ]
