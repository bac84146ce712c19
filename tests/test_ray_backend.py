"""`--backend ray` on a real multi-node Ray cluster on 127.0.0.1 (conftest's `ray_cluster`)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

import ce
from batchkit import Spec, append, git, make_batch_repo, write
from raykit import (
    LocalRay,
    facts,
    output,
    processes,
    run_ce,
    start_ce,
    wait_for,
)

# One worker runs them all, in this order, on one cluster (conftest's scheduler): a test adds
# a node, others remove some.
pytestmark = pytest.mark.ray

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


SECRET = "s3cr3t-value-123"  # Ray's runtime_env gives it to the agents; the log masks it


def _twin_repos(tmp_path: Path) -> tuple[Path, Path]:
    """Two repositories with the same history, each in a directory of its own (the PRP
    worktrees go beside the repository), and an ignored `.env` that `.worktreeinclude` names
    (PRP-7.1.1 prints it, and the secret its environment has on a node)."""
    fenced = Spec(  # the fence refuses the tag on the node as here: the PRP fails naming it
        id="PRP-7.1.4",
        title="Four",
        phases=[["git tag agent-tag || true", write("4/a.txt", "Four")]],
        files=["4/a.txt"],
    )
    first, *others = _specs()
    printing = ["cat .env", "echo key=${MY_API_KEY-}"]  # (no key here: locally)
    first = replace(first, phases=[[*first.phases[0], *printing], *first.phases[1:]])
    config = f"{CONFIG}[backend]\nruntime_env = {{ env_vars = {{ MY_API_KEY = {SECRET!r} }} }}\n"
    specs = [first, *others, fenced]
    first_repo = make_batch_repo(tmp_path / "local" / "repo", specs, config=config)
    (first_repo / ".gitignore").write_text(".env\n")
    (first_repo / ".worktreeinclude").write_text(".env\n")
    git(first_repo, "add", ".gitignore", ".worktreeinclude")
    git(first_repo, "commit", "-q", "-m", "Include .env")
    (first_repo / ".env").write_text("included=yes\n")
    second = tmp_path / "ray" / "repo"
    _copy_repo(first_repo, second)
    return first_repo, second


def _copy_repo(source: Path, copy: Path) -> None:
    """`copy` with `source`'s history. Its index is refreshed: the copied files' stat data no
    longer matches it, and the lane's fast-forward of the checkout (`git read-tree -m -u`)
    refuses a stale entry ("Entry '.gitignore' not uptodate"), so that the `.ce/tmp/` line
    would not be committed there while it is in `source`."""
    copy.parent.mkdir()
    shutil.copytree(source, copy, symlinks=True)
    git(copy, "update-index", "-q", "--refresh")


def _on(cluster: LocalRay) -> tuple[str, ...]:
    return ("--backend", "ray", "--ray-address", cluster.address)


def _history(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%H %P %s", "main").splitlines()


def test_a_batch_through_ray_makes_the_same_commits_as_a_local_run(
    tmp_path: Path, ray_cluster: LocalRay
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
    assert "[ce] .worktreeinclude: copied .env" in log and "included=yes" in log, log
    assert "key=***" in log and SECRET not in log, log  # masked as the lines came back


def _other_ce(where: Path, version: str) -> Path:
    """A directory whose `ce` package is this one but says it is `version`."""
    package = where / "ce"
    package.mkdir(parents=True)
    here = Path(ce.__file__).parent
    for entry in here.iterdir():
        if entry.name != "__init__.py":
            (package / entry.name).symlink_to(entry)
    source = (here / "__init__.py").read_text()
    (package / "__init__.py").write_text(source.replace(ce.__version__, version))
    return where


def _without_ce(where: Path) -> Path:
    """A directory whose `sitecustomize` takes every directory that holds a `ce` package off
    `sys.path`: a Python started with it on PYTHONPATH has Ray but no ce, as a node where ce
    was never installed."""
    where.mkdir(parents=True)
    (where / "sitecustomize.py").write_text(
        "import os, sys\n"
        "sys.path[:] = [p for p in sys.path\n"
        "               if not os.path.isfile(os.path.join(p or '.', 'ce', '__init__.py'))]\n"
    )
    return where


def test_a_node_without_the_agent_cli_without_ce_or_with_another_ce_fails_preflight_naming_it(
    tmp_path: Path, ray_cluster: LocalRay
) -> None:
    agent = ray_cluster.bin / "my-agent"  # the cluster's nodes have it; the two added do not
    agent.write_text("#!/bin/sh\nexit 0\n")
    agent.chmod(0o755)
    having = [node.node_id for node in ray_cluster.nodes]
    python_path = ray_cluster.env["PYTHONPATH"]
    older = _other_ce(tmp_path / "old", "0.0.1")
    lacking = {"PATH": os.environ["PATH"]}
    old = ray_cluster.add_node(env=lacking | {"PYTHONPATH": f"{older}:{python_path}"}, wait=False)
    bare = ray_cluster.add_node(
        env=lacking | {"PYTHONPATH": f"{_without_ce(tmp_path / 'bare')}:{python_path}"}, wait=False
    )
    ray_cluster.cluster.wait_for_nodes()  # both started together
    config = '[executor]\nname = "command"\n[executor.command]\nrun = "my-agent {prp_path}"\n'
    repo = make_batch_repo(tmp_path / "repo", _specs(), config=config)
    try:
        done = run_ce(repo, "batch-exe", "--batch", "7", *_on(ray_cluster))
    finally:
        agent.unlink()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for node_id in having:
        assert node_id[:12] not in done.stderr, done.stderr
    lacks = f"({old.node_id[:12]}): my-agent (the [executor.command] program) is not on PATH"
    assert lacks in done.stderr, done.stderr
    needed = f"({old.node_id[:12]}): ce 0.0.1 is installed there, ce {ce.__version__} is needed"
    assert needed in done.stderr, done.stderr
    missing = f"({bare.node_id[:12]}): ce is not installed there (ce {ce.__version__} is needed"
    assert missing in done.stderr, done.stderr
    assert "Install what is missing on those nodes" in done.stderr, done.stderr
    assert not facts(repo, "launched")  # nothing was started
    for node in (old, bare):  # no batch could run with them
        ray_cluster.remove_node(node, graceful=True)


def _waiting_spec(flag: Path, counter: Path, n: int = 1, word: str = "One") -> Spec:
    """Phase 1 is committed (and shipped) at once; phase 2 waits for `flag`."""
    return Spec(
        id=f"PRP-7.1.{n}",
        title=word,
        phases=[
            [write(f"{n}/a.txt", word), f"echo started {n} >> {counter}"],
            [f"while [ ! -e {flag} ]; do sleep 0.1; done", append(f"{n}/a.txt", "more")],
        ],
        files=[f"{n}/a.txt"],
    )


def test_stop_stops_the_agent_and_everything_it_started_on_the_node(
    tmp_path: Path, ray_cluster: LocalRay
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
        wait_for("no actor left", lambda: ray_cluster.actors_of("7") == [], 15)
    finally:
        coordinator.kill()


def _killed_in_phase_2(repo: Path, specs: list[Spec], cluster: LocalRay) -> None:
    """A batch whose coordinator is SIGKILLed (nothing of ce's runs its handlers) while its
    agents wait in phase 2 on the nodes (`_waiting_spec`)."""
    make_batch_repo(repo, specs, config=CONFIG)
    coordinator = start_ce(repo, "batch-exe", "--batch", "7", *_on(cluster))
    try:
        wait_for("shipped phase 1", lambda: len(facts(repo, "shipped")) == len(specs))
        for checkout in (f"ce-ray/7-{spec.id}-1/" for spec in specs):
            wait_for("phase 2 waiting", lambda: processes(checkout))  # noqa: B023 (waited for)
        coordinator.kill()
        coordinator.wait(30)
    finally:
        coordinator.kill()


def test_cleanup_stops_the_actors_and_agents_a_killed_coordinator_left(
    tmp_path: Path, ray_cluster: LocalRay
) -> None:
    repo = tmp_path / "repo"
    _killed_in_phase_2(repo, [_waiting_spec(tmp_path / "go", tmp_path / "started")], ray_cluster)
    done = run_ce(repo, "cleanup", "--batch", "7", "--force", "--ray-address", ray_cluster.address)
    assert done.returncode == 0, done.stderr
    assert "Stopped Ray actor 7/PRP-7.1.1/1 and its agent." in done.stdout
    assert processes("ce-ray/7-PRP-7.1.1-1/") == []
    wait_for("no actor left", lambda: ray_cluster.actors_of("7") == [], 15)


def test_a_coordinator_killed_is_resumed_re_attaching_to_the_journals_actors_or_relaunching(
    tmp_path: Path, ray_cluster: LocalRay
) -> None:
    flag, counter, repo = tmp_path / "go", tmp_path / "started", tmp_path / "repo"
    specs = [_waiting_spec(flag, counter), _waiting_spec(flag, counter, 2, "Two")]
    _killed_in_phase_2(repo, specs, ray_cluster)
    launched = {fact["prp"]: fact for fact in facts(repo, "launched")}
    assert launched["PRP-7.1.1"]["backend"] == "ray"
    assert launched["PRP-7.1.1"]["actor"] == "7/PRP-7.1.1/1"
    assert launched["PRP-7.1.1"]["node"] in {node.node_id for node in ray_cluster.nodes}
    # Detached: still there. PRP-7.1.2's is then gone (its agent with it); PRP-7.1.1 has a
    # newer actor too, which its journal does not name (one a coordinator started, then died).
    assert ray_cluster.actors_of("7") == ["7/PRP-7.1.1/1", "7/PRP-7.1.2/1"]
    tip = [fact["tip"] for fact in facts(repo, "shipped") if fact["prp"] == "PRP-7.1.2"][-1]
    ray_cluster.kill_actor("7/PRP-7.1.2/1")
    ray_cluster.start_actor("7/PRP-7.1.1/3")
    wait_for(
        "the agent of the actor killed stopped", lambda: not processes("ce-ray/7-PRP-7.1.2-1/")
    )
    flag.touch()
    done = run_ce(repo, "batch-exe", "--batch", "7", "--resume", *_on(ray_cluster))
    assert done.returncode == 0, done.stderr
    logs = repo / ".ce" / "tmp" / "logs"
    log = (logs / "PRP-7.1.1.log").read_text()
    assert "re-attached to actor 7/PRP-7.1.1/1" in log, log
    log = (logs / "PRP-7.1.2.log").read_text()
    assert f"actor 7/PRP-7.1.2/1 is gone: relaunched from the branch's tip {tip[:12]}" in log, log
    assert sorted(counter.read_text().splitlines()) == ["started 1", "started 2"]  # once each
    assert git(repo, "show", "main:1/a.txt") == "One\nmore"
    assert git(repo, "show", "main:2/a.txt") == "Two\nmore"
    actors = [fact["actor"] for fact in facts(repo, "launched")]
    assert "7/PRP-7.1.2/2" in actors[2:]  # (7.1.1's agent may have ended before it resumed)
    assert set(actors[2:]) <= {"7/PRP-7.1.1/1", "7/PRP-7.1.2/2"}  # not 7.1.1's newer one
    wait_for("no actor left", lambda: ray_cluster.actors_of("7") == [], 15)


def _run_locally(tmp_path: Path, specs: list[Spec], config: str, *flags: Path) -> tuple[Path, Path]:
    """Two repositories of `specs`, the first run through the local backend (with `flags`
    there, removed after); the second's to go through Ray. The second is a copy of the first:
    two made apart would differ whenever a second of the clock, which dates their first
    commits, passed in between (then no SHA matched)."""
    local, remote = tmp_path / "local" / "repo", tmp_path / "ray" / "repo"
    make_batch_repo(local, specs, config=config)
    _copy_repo(local, remote)
    for flag in flags:
        flag.touch()
    assert run_ce(local, "batch-exe", "--batch", "7").returncode == 0
    for flag in flags:
        flag.unlink()
    return local, remote


def _finished_like(coordinator: subprocess.Popen[str], local: Path, remote: Path) -> str:
    """The batch through Ray ended as the local one did, with the same commits; its log."""
    coordinator.wait(120)
    assert coordinator.returncode == 0, output(remote).read_text()
    assert _history(remote) == _history(local)
    return (remote / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log").read_text()


def _first_waits(record: Path, flag: Path) -> str:
    """A bash command that writes where it runs to `record`, then (the first of its runs
    there only) waits until it runs a second time or `flag` is there."""
    return (
        f"pwd >> {record}; while [ ! -e {flag} ] && [ $(wc -l < {record}) -lt 2 ]; "
        "do sleep 0.1; done"
    )


def _node_in(cluster: LocalRay, record: Path, line: int) -> object:
    """The node the `line`-th run of a `_first_waits` command ran on (its directory names it)."""
    lines = wait_for(
        f"run {line}", lambda: record.exists() and record.read_text().splitlines()[line - 1 :]
    )
    prefix = next(part for part in reversed(Path(lines[0]).parts) if len(part) == 12)
    return next(node for node in cluster.nodes if node.node_id.startswith(prefix))


def test_nodes_lost_in_its_setup_its_agent_and_its_validation_are_survived_with_the_same_commits(
    tmp_path: Path, ray_cluster: LocalRay
) -> None:
    """One PRP loses its node at each step of its run in turn, each time relaunched on another
    node, and ends with the commits of a local run: in `setup`, while its agent waits in
    phase 2 (phase 1 shipped), and in its validation's L3."""
    flag, go_on, counter = tmp_path / "go", tmp_path / "phase-2", tmp_path / "started"
    setups, checks = tmp_path / "setups", tmp_path / "checks"
    setup, check = (f"bash -c {shlex.quote(_first_waits(path, flag))}" for path in (setups, checks))
    config = (
        f"setup = {json.dumps(setup)}\n{CONFIG}[validate]\nlevel3 = {json.dumps(check)}\n"
        "[backend]\nrelaunches = 3\n"
    )
    spec = _waiting_spec(go_on, counter)
    local, remote = _run_locally(tmp_path, [spec], config, flag, go_on)
    for made in (setups, checks):
        made.unlink()
    while len(ray_cluster.nodes) < 4:  # a node for each of its four placements, started
        ray_cluster.add_node(wait=False)  # together
    ray_cluster.cluster.wait_for_nodes()
    coordinator = start_ce(remote, "batch-exe", "--batch", "7", *_on(ray_cluster))
    try:
        ray_cluster.remove_node(_node_in(ray_cluster, setups, 1))  # its setup waits there
        wait_for("shipped phase 1", lambda: facts(remote, "shipped"))
        node = ray_cluster.node(facts(remote, "launched")[-1]["node"])
        wait_for("phase 2 waiting", lambda: processes("ce-ray/7-PRP-7.1.1-2/"))
        ray_cluster.remove_node(node)  # its raylet, its workers and the actor gone at once
        wait_for("relaunch", lambda: len(facts(remote, "launched")) == 2)
        # The shim saw its worker die: that agent is stopped, not left working.
        wait_for("the agent lost stopped", lambda: not processes("ce-ray/7-PRP-7.1.1-2/"), 30)
        go_on.touch()
        ray_cluster.remove_node(_node_in(ray_cluster, checks, 1))  # its L3 waits there
        log = _finished_like(coordinator, local, remote)
    finally:
        coordinator.kill()
    assert "relaunched (1 of 3)" in log, log
    assert "relaunched from phase 2" in log, log
    assert "validating again on another node" in log, log
    assert [f["actor"] for f in facts(remote, "launched")] == ["7/PRP-7.1.1/2", "7/PRP-7.1.1/3"]


def test_resume_takes_the_journals_last_ray_launch_before_this_run(tmp_path: Path) -> None:
    from ce.run.backends.ray_parts import Journaled, journaled
    from ce.run.state import Journal

    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.fact("start", batch="7", target="main", resume=False)
    journal.fact("launched", prp="PRP-7.1.1", backend="ray", actor="7/PRP-7.1.1/1", node="n1")
    journal.fact("shipped", prp="PRP-7.1.1", tip="a" * 40)
    journal.fact("launched", prp="PRP-7.1.2", backend="local", pid=1, pgid=1)
    journal.fact("launched", prp="PRP-7.1.1", backend="ray", actor="7/PRP-7.1.1/2", node="n2")
    journal.fact("shipped", prp="PRP-7.1.1", tip="b" * 40)
    journal.fact("start", batch="7", target="main", resume=True)  # this run's
    journal.fact("launched", prp="PRP-7.1.1", backend="ray", actor="7/PRP-7.1.1/3", node="n3")
    journal.close()
    assert journaled(path, "PRP-7.1.1") == Journaled("7/PRP-7.1.1/2", "n2", "b" * 40)
    assert journaled(path, "PRP-7.1.1").gen == 2  # type: ignore[union-attr]
    assert journaled(path, "PRP-7.1.2") is None  # it ran here
    assert journaled(path, "PRP-7.1.3") is None  # never launched


def test_a_node_where_ce_cannot_be_imported_is_told_what_failed_and_what_is_needed() -> None:
    """The error a node's worker raises when the check cannot be unpickled there (as seen from
    a node whose Python has ce but not pydantic): its last line says what failed."""
    from ray.exceptions import RayTaskError

    from ce.run.backends.ray_cluster import _not_run

    def raised(last: str) -> RayTaskError:
        trace = (
            "Traceback (most recent call last):\n"
            '  File "ray/_private/function_manager.py", line 314, in fetch_and_register\n'
            "    function = pickle.loads(serialized_function)\n"
            f"{last}\n"
        )
        cause = RuntimeError(f"The remote function failed to import on the worker.\n\n{trace}")
        error = RayTaskError(  # type: ignore[no-untyped-call]
            "node_check", trace, cause, proctitle="ray::node_check()", pid=1, ip="127.0.0.1"
        )
        dual: RayTaskError = error.as_instanceof_cause()  # type: ignore[no-untyped-call]
        return dual  # what ray.get raises

    halted = "ModuleNotFoundError: import of pydantic halted; None in sys.modules"
    assert _not_run(raised(halted)) == (
        f"ce cannot be imported there ({halted}): install ce {ce.__version__} there with its "
        "dependencies (as here)"
    )
    assert _not_run(raised("ModuleNotFoundError: No module named 'ce'")) == (
        f"ce is not installed there (ce {ce.__version__} is needed, as here)"
    )
    assert _not_run(raised("OSError: [Errno 28] No space left on device")) == (
        "the check could not run (OSError: [Errno 28] No space left on device)"
    )
