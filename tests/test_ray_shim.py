"""The agent shim under a real Ray (issue 14, item 3): Ray kills only a dying worker's direct
children, so every Ray-level stop leaves an agent's tool subprocesses running — unless the agent
runs under the shim, which then stops its whole tree: after ray.kill, ray.cancel(force=True),
the driver's death and the node's (its raylet killed). Exit codes and niceness under Ray too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ce.proc import Child, spawn_group
from ce.proc.procfs import pid_alive
from ce.proc.shim import ShimChild, spawn_shim
from raykit import LocalRay, ray  # raykit sets what Ray reads when imported
from test_shim import TREE, eventually, marked, marker_for, no_leftovers

pytestmark = [
    pytest.mark.ray,
    pytest.mark.usefixtures(no_leftovers.__name__),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def launch(script: str, tmp: Path, shimmed: bool) -> Child | ShimChild:
    """Start an agent as the Ray backend would, through the shim or (the baseline) directly."""
    argv = ["bash", "-c", script]
    if not shimmed:
        return spawn_group(argv, cwd=tmp, env=dict(os.environ), log_path=tmp / "agent.log")
    return spawn_shim(
        argv,
        cwd=tmp,
        env=dict(os.environ),
        status_path=tmp / "run" / "status.json",
        log_path=tmp / "run" / "agent.log",
        watch_pid=os.getpid(),
        grace=1.0,
    )


@ray.remote(num_cpus=0, max_restarts=0)
class Launcher:
    """An actor that runs one agent (as the Ray backend's per-launch actor does)."""

    def __init__(self) -> None:
        self.child: Child | ShimChild | None = None

    def launch(self, script: str, tmp: str, shimmed: bool) -> dict[str, int]:
        self.child = launch(script, Path(tmp), shimmed)
        return {"worker": os.getpid(), "agent": self.child.pid, "nice": os.nice(0)}

    def wait(self, timeout: float) -> int | None:
        assert self.child is not None
        return self.child.wait(timeout)


@ray.remote(num_cpus=0, max_retries=0)
def run_agent(script: str, tmp: str, shimmed: bool) -> int | None:
    """A task that runs an agent to its end."""
    (Path(tmp) / "worker").write_text(str(os.getpid()))
    return launch(script, Path(tmp), shimmed).wait()


def stop_through_ray(how: str, tmp: Path, shimmed: bool) -> tuple[str, int]:
    """Start the tree in a worker, wait until it runs, stop it the Ray way `how`; the marker
    of its processes and the worker's pid (gone when this returns)."""
    marker = marker_for(tmp)
    script = TREE.format(m=marker)
    if how == "kill":
        actor = Launcher.remote()  # type: ignore[attr-defined]
        worker = ray.get(actor.launch.remote(script, str(tmp), shimmed), timeout=60)["worker"]
    else:
        ref = run_agent.remote(script, str(tmp), shimmed)
    assert eventually(lambda: len(marked(marker)) == 5, timeout=60)
    if how == "kill":
        ray.kill(actor, no_restart=True)
    else:
        worker = int((tmp / "worker").read_text())
        ray.cancel(ref, force=True)
    assert eventually(lambda: not pid_alive(worker), timeout=30)
    return marker, worker


@pytest.mark.parametrize("how", ["kill", "cancel"])
def test_without_the_shim_a_ray_stop_leaves_the_tools_running(
    ray_cluster: LocalRay, tmp_path: Path, how: str
) -> None:
    """The baseline of the issue: ray.kill and ray.cancel(force=True) kill the worker and its
    direct children (the agent, and what was orphaned to the worker, a subreaper since it ran
    `spawn_group`); the agent's own children run on (seen: sleeps 1 and 3 of TREE)."""
    marker, _ = stop_through_ray(how, tmp_path, shimmed=False)
    time.sleep(2)  # what Ray would still kill, it has killed by now
    left = sorted(Path(f"/proc/{pid}/cmdline").read_text().split("\0")[1] for pid in marked(marker))
    for pid in marked(marker):
        os.kill(pid, signal.SIGKILL)
    assert f"{marker}1" in left and f"{marker}3" in left, left


@pytest.mark.parametrize("how", ["kill", "cancel"])
def test_with_the_shim_a_ray_stop_leaves_nothing(
    ray_cluster: LocalRay, tmp_path: Path, how: str
) -> None:
    marker, _ = stop_through_ray(how, tmp_path, shimmed=True)
    child = ShimChild.attach(tmp_path / "run" / "status.json", tmp_path / "run" / "agent.log")
    assert child.wait(15) == -signal.SIGTERM
    assert child.stopped == "worker-gone"
    assert marked(marker) == []


DRIVER = """\
import json, sys, time
from test_ray_shim import Launcher, ray  # raykit first, as in the tests
ray.init(address=sys.argv[1], log_to_driver=False)
actor = Launcher.remote()
print(json.dumps(ray.get(actor.launch.remote(sys.argv[2], sys.argv[3], True))), flush=True)
time.sleep(1000)
"""


def test_with_the_shim_the_driver_dying_leaves_nothing(
    ray_cluster: LocalRay, tmp_path: Path
) -> None:
    marker = marker_for(tmp_path)
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, ray_cluster.address, TREE.format(m=marker), str(tmp_path)],
        env=ray_cluster.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    try:
        launched = json.loads(driver.stdout.readline())
        assert eventually(lambda: len(marked(marker)) == 5, timeout=60)
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()
    child = ShimChild.attach(tmp_path / "run" / "status.json", tmp_path / "run" / "agent.log")
    assert child.pid == launched["agent"]
    assert child.wait(30) == -signal.SIGTERM  # once Ray has killed the dead driver's actor
    assert child.stopped == "worker-gone"
    assert not pid_alive(launched["worker"])
    assert marked(marker) == []


def test_with_the_shim_the_node_dying_leaves_nothing(ray_cluster: LocalRay, tmp_path: Path) -> None:
    marker = marker_for(tmp_path)
    node = ray_cluster.add_node({"doomed": 1})
    actor = Launcher.options(resources={"doomed": 1}).remote()  # type: ignore[attr-defined]
    launched = ray.get(actor.launch.remote(TREE.format(m=marker), str(tmp_path), True), timeout=60)
    assert eventually(lambda: len(marked(marker)) == 5, timeout=60)
    ray_cluster.remove_node(node)  # its raylet is killed, and with it its workers
    child = ShimChild.attach(tmp_path / "run" / "status.json", tmp_path / "run" / "agent.log")
    assert child.wait(30) == -signal.SIGTERM
    assert child.stopped == "worker-gone"
    assert not pid_alive(launched["worker"])
    assert marked(marker) == []


def test_exit_codes_and_niceness_pass_through_under_ray(
    ray_cluster: LocalRay, tmp_path: Path
) -> None:
    actor: Any = Launcher.remote()  # type: ignore[attr-defined]
    script = "echo nice=$(nice); bash -c 'exit 3'; echo inner=$?; exit 4"
    launched = ray.get(actor.launch.remote(script, str(tmp_path), True), timeout=60)
    assert ray.get(actor.wait.remote(30), timeout=60) == 4
    log = (tmp_path / "run" / "agent.log").read_text()
    assert "inner=3" in log  # SIGCHLD is not ignored in the worker nor under the shim
    assert "nice=0" in log and launched["nice"] == 0  # the nodes start with RAY_worker_niceness=0
    ray.kill(actor)
