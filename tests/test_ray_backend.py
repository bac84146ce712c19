"""`--backend ray` on a real 3-node Ray cluster on 127.0.0.1 (`raycluster`)."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from batchkit import Spec, append, git, make_batch_repo, write
from raycluster import (
    LoopbackCluster,
    facts,
    output,
    processes,
    ray_actors_of,
    ray_cluster,
    run_ce,
    start_ce,
    wait_for,
)

# One worker runs them all, in this order, on one cluster (conftest's scheduler): a test adds
# a node, the last one removes one.
pytestmark = pytest.mark.ray
__all__ = ["ray_cluster"]

CONFIG = """\
executor = "script"
max_parallel = 4
[monitor]
poll_seconds = 0.2
"""


def _specs() -> list[Spec]:
    return [
        Spec(
            id=f"PRP-7.1.{n}",
            title=word,
            phases=[[write(f"{n}/a.txt", word)], [append(f"{n}/a.txt", "more"), "sleep 0.5"]],
            files=[f"{n}/a.txt"],
        )
        for n, word in ((1, "One"), (2, "Two"), (3, "Three"))
    ]


def _twin_repos(tmp_path: Path) -> tuple[Path, Path]:
    """Two repositories with the same history, each in a directory of its own (the PRP
    worktrees go beside the repository)."""
    fenced = Spec(  # the fence refuses the tag on the node as here: the PRP fails naming it
        id="PRP-7.1.4",
        title="Four",
        phases=[["git tag agent-tag || true", write("4/a.txt", "Four")]],
        files=["4/a.txt"],
    )
    first = make_batch_repo(tmp_path / "local" / "repo", [*_specs(), fenced], config=CONFIG)
    second = tmp_path / "ray" / "repo"
    second.parent.mkdir()
    shutil.copytree(first, second, symlinks=True)
    return first, second


def _on(cluster: LoopbackCluster) -> tuple[str, ...]:
    return ("--backend", "ray", "--ray-address", cluster.address)


def _history(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%H %P %s", "main").splitlines()


def test_a_batch_through_ray_makes_the_same_commits_as_a_local_run(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    local, remote = _twin_repos(tmp_path)
    done = run_ce(local, "batch-exe", "--batch", "7", "--continue-on-error")
    assert done.returncode == 1, done.stderr
    refused = "the executor tried to update refs/tags/agent-tag"
    assert refused in done.stdout, done.stdout
    done = run_ce(remote, "batch-exe", "--batch", "7", "--continue-on-error", *_on(ray_cluster))
    assert done.returncode == 1, done.stderr + done.stdout
    assert refused in done.stdout, done.stdout
    assert _history(remote) == _history(local)
    log = (remote / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log").read_text()
    assert "on Ray node" in log, log


def test_a_node_without_the_agent_cli_fails_preflight_naming_it(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "my-agent").write_text("#!/bin/sh\nexit 0\n")
    (tools / "my-agent").chmod(0o755)
    lacking = [node.node_id for node in ray_cluster.nodes]
    having = ray_cluster.add_node(env={"PATH": f"{tools}:{os.environ['PATH']}"})
    config = '[executor]\nname = "command"\n[executor.command]\nrun = "my-agent {prp_path}"\n'
    repo = make_batch_repo(tmp_path / "repo", _specs(), config=config)
    done = run_ce(repo, "batch-exe", "--batch", "7", *_on(ray_cluster))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for node_id in lacking:
        assert f"({node_id[:12]}): my-agent (the [executor.command] program) is not on PATH" in (
            done.stderr
        ), done.stderr
    assert having.node_id[:12] not in done.stderr
    assert not facts(repo, "launched")  # nothing was started


def _waiting_spec(flag: Path, counter: Path) -> Spec:
    """Phase 1 is committed (and shipped) at once; phase 2 waits for `flag`."""
    return Spec(
        id="PRP-7.1.1",
        title="One",
        phases=[
            [write("1/a.txt", "One"), f"echo started >> {counter}"],
            [f"while [ ! -e {flag} ]; do sleep 0.1; done", append("1/a.txt", "more")],
        ],
        files=["1/a.txt"],
    )


def test_stop_stops_the_agent_and_everything_it_started_on_the_node(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    marker = f"sleep 31.{os.getpid() % 1000}"
    spec = Spec(
        id="PRP-7.1.1",
        title="One",
        phases=[[f"( {marker} ) & setsid {marker} & {marker}"]],
        files=["a.txt"],
    )
    repo = make_batch_repo(tmp_path / "repo", [spec], config=CONFIG)
    coordinator = start_ce(repo, "batch-exe", "--batch", "7", *_on(ray_cluster))
    try:
        wait_for("agent", lambda: len(processes(marker)) >= 3)
        coordinator.send_signal(signal.SIGTERM)
        assert coordinator.wait(60) == 130, output(repo).read_text()
        assert processes(marker) == []
        assert ray_actors_of(ray_cluster, "7") == []
    finally:
        coordinator.kill()


def _killed_in_phase_2(repo: Path, flag: Path, counter: Path, cluster: LoopbackCluster) -> None:
    """A batch whose coordinator is SIGKILLed (nothing of ce's runs its handlers) while its
    agent waits in phase 2 on a node."""
    make_batch_repo(repo, [_waiting_spec(flag, counter)], config=CONFIG)
    coordinator = start_ce(repo, "batch-exe", "--batch", "7", *_on(cluster))
    try:
        wait_for("shipped phase 1", lambda: facts(repo, "shipped"))
        wait_for("phase 2 waiting", lambda: processes("ce-ray/7-PRP-7.1.1-1/"))
        coordinator.kill()
        coordinator.wait(30)
    finally:
        coordinator.kill()


def test_cleanup_stops_the_actors_and_agents_a_killed_coordinator_left(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    repo = tmp_path / "repo"
    _killed_in_phase_2(repo, tmp_path / "go", tmp_path / "started", ray_cluster)
    done = run_ce(repo, "cleanup", "--batch", "7", "--force", "--ray-address", ray_cluster.address)
    assert done.returncode == 0, done.stderr
    assert "Stopped Ray actor 7/PRP-7.1.1/1 and its agent." in done.stdout
    assert processes("ce-ray/7-PRP-7.1.1-1/") == []
    assert ray_actors_of(ray_cluster, "7") == []


def test_a_coordinator_killed_is_resumed_by_re_attaching_to_its_running_agent(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    flag, counter, repo = tmp_path / "go", tmp_path / "started", tmp_path / "repo"
    _killed_in_phase_2(repo, flag, counter, ray_cluster)
    launched = facts(repo, "launched")[-1]
    assert launched["backend"] == "ray" and launched["actor"] == "7/PRP-7.1.1/1"
    assert ray_actors_of(ray_cluster, "7") == ["7/PRP-7.1.1/1"]  # detached: still there
    flag.touch()
    done = run_ce(repo, "batch-exe", "--batch", "7", "--resume", *_on(ray_cluster))
    assert done.returncode == 0, done.stderr
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log").read_text()
    assert "re-attached to actor 7/PRP-7.1.1/1" in log, log
    assert counter.read_text() == "started\n"  # the agent was not started again
    assert git(repo, "show", "main:1/a.txt") == "One\nmore"
    assert ray_actors_of(ray_cluster, "7") == []


def test_a_node_lost_mid_prp_is_survived_on_another_with_the_same_commits(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    flag, counter = tmp_path / "go", tmp_path / "started"
    local, remote = tmp_path / "local" / "repo", tmp_path / "ray" / "repo"
    for repo in (local, remote):
        make_batch_repo(repo, [_waiting_spec(flag, counter)], config=CONFIG)
    flag.touch()
    assert run_ce(local, "batch-exe", "--batch", "7").returncode == 0
    flag.unlink()
    coordinator = start_ce(remote, "batch-exe", "--batch", "7", *_on(ray_cluster))
    try:
        wait_for("shipped phase 1", lambda: facts(remote, "shipped"))
        node = ray_cluster.node(facts(remote, "launched")[-1]["node"])
        wait_for("phase 2 waiting", lambda: processes("ce-ray/7-PRP-7.1.1-1/"))
        ray_cluster.remove_node(node)  # its raylet, its workers and the actor gone at once
        wait_for("relaunch", lambda: len(facts(remote, "launched")) == 2)
        # The shim saw its worker die: the first agent is stopped, not left working.
        wait_for("the first agent stopped", lambda: not processes("ce-ray/7-PRP-7.1.1-1/"), 30)
        flag.touch()
        coordinator.wait(120)
    finally:
        coordinator.kill()
    assert coordinator.returncode == 0, output(remote).read_text()
    assert _history(remote) == _history(local)
    log = (remote / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log").read_text()
    assert "relaunched from phase 2" in log, log
    assert [f["actor"] for f in facts(remote, "launched")] == ["7/PRP-7.1.1/1", "7/PRP-7.1.1/2"]
