"""The parts of the `ray` backend's place that hold no logic of their own: the launch as the
worker sees it, the actor of an attempt, what came back from it, the actor's options."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayError

from ce import git
from ce.config import BackendConfig
from ce.run import worktree_env
from ce.run.backends.base import Site
from ce.run.backends.ray_cluster import NAMESPACE, node_alive
from ce.run.backends.ray_node import NodeLaunch, NodeSpec
from ce.run.state import Journal

PULL_SECONDS = 0.2
CALL_SECONDS = 60.0  # an actor call that takes longer: the node is looked at
MARKED_DEAD_SECONDS = 30.0  # an actor's death before its node's: how long the node may lag


class Stopper(Protocol):
    def stop_agent(self, grace: float) -> None: ...


class RemoteChild:
    """A launch on a node, as the worker and the monitor see it (`proc.Supervised`)."""

    def __init__(self, place: Stopper, pid: int, pgid: int, launch: int) -> None:
        self.place = place
        self._pid, self._pgid = pid, pgid
        self.launch = launch  # the node's count: a pull's exit code is this launch's or not
        self.code: int | None = None
        self.ended = threading.Event()

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def pgid(self) -> int:
        return self._pgid

    @property
    def returncode(self) -> int | None:
        return self.code

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int | None:
        self.ended.wait(timeout)
        return self.code

    def stop(self, grace: float = 5.0) -> int | None:
        self.place.stop_agent(grace)
        self.ended.wait(grace + 10 * PULL_SECONDS + CALL_SECONDS)
        return self.code

    def end(self, code: int) -> None:
        if self.code is None:
            self.code = code
        self.ended.set()


@dataclass
class Attempt:
    """The actor of the PRP's current attempt."""

    handle: Any = None
    name: str = ""  # <batch>/<prp>/<attempt>
    node: str = ""  # the id of the node it runs on
    gen: int = 0  # the attempt
    relaunches: int = 0  # after a lost node
    lost: str = ""  # the node it was last lost on
    ready: bool = False  # its checkout made: pulls go to it


@dataclass
class Stream:
    """What came back from the node so far."""

    shipped: str = ""  # the last commit in the branch here
    offset: int = 0  # the node's log bytes copied to the PRP's log
    filter: Any = None  # masking this launch's secrets


class Journaled(NamedTuple):
    """A PRP's last launch on Ray, as an earlier run's journal says (`launched`, `shipped`)."""

    actor: str  # <batch>/<prp>/<attempt>
    node: str
    tip: str | None  # the last commit of it fetched here

    @property
    def gen(self) -> int:
        attempt = self.actor.rpartition("/")[2]
        return int(attempt) if attempt.isdigit() else 0


def journaled(path: Path, prp_id: str) -> Journaled | None:
    """The PRP's last launch before this run started, from the journal's facts, if it ran on
    Ray (this run's own launches it closed itself)."""
    launched: dict[str, Any] | None = None
    tip = None
    before: tuple[dict[str, Any] | None, str | None] = (None, None)
    for entry in Journal.read(path):
        if entry.get("fact") == "start":
            before = (launched, tip)
        elif entry.get("prp") != prp_id:
            continue
        elif entry.get("fact") == "launched":
            launched = entry
        elif entry.get("fact") == "shipped":
            tip = str(entry.get("tip"))
    last, tip = before
    if last is None or last.get("backend") != "ray" or not last.get("actor"):
        return None
    return Journaled(str(last["actor"]), str(last.get("node", "")), tip)


def actor_class(config: BackendConfig, name: str) -> Any:
    options: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",  # a coordinator restarted with --resume finds it running
        "num_cpus": 0,
        "resources": {config.slot_resource: 1},
        "max_restarts": 0,
        "max_concurrency": 4,  # pulls while a validation runs
    }
    if config.runtime_env:
        options["runtime_env"] = dict(config.runtime_env)
    return ray.remote(NodeLaunch).options(**options)


def node_load(
    site: Site, scratch: Path, mirror: git.Repo
) -> tuple[NodeSpec, Any, dict[str, bytes]]:
    """What a new actor's `prepare` is given: the PRP, the branch as `mirror` has it (a bundle
    in the object store), the `.worktreeinclude` files."""
    ctx, prp = site.ctx, site.prp
    bundle = scratch / "branch.bundle"
    scratch.mkdir(parents=True, exist_ok=True)
    mirror.create_bundle(bundle, f"refs/heads/{site.branch}")
    spec = NodeSpec(
        prp=prp,
        branch=site.branch,
        settings=ctx.worktree_settings,
        relpath=ctx.relpath(prp),
        prp_text=prp.path.read_text(encoding="utf-8"),
        executor=ctx.executor,
        validation=ctx.config.validation,
        grace=ctx.config.monitor.grace_seconds,
        coordinator_timeout=ctx.config.backend.coordinator_timeout_seconds,
    )
    return spec, ray.put(bundle.read_bytes()), worktree_env.included_files(ctx.root)


def own_variables(env: Mapping[str, str]) -> dict[str, str]:
    """What the node adds to its own environment: ce's variables for the PRP (CE_BASE,
    CE_PORT_BASE), not this machine's."""
    return {key: value for key, value in env.items() if key.startswith("CE_")}


def kill_actor(name: str) -> None:
    with contextlib.suppress(ValueError, RayError):
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)


def let_go(name: str, node: str, halted: threading.Event) -> None:
    """A lost launch's actor killed, and its node, until the cluster marks it dead, waited for
    (an actor dies before its node is seen dead, and a new one placed there meanwhile dies
    too: CI stop 19); at most MARKED_DEAD_SECONDS, for an actor that died on a live node."""
    kill_actor(name)
    deadline = time.monotonic() + MARKED_DEAD_SECONDS
    while node and node_alive(node) and time.monotonic() < deadline:
        if halted.wait(PULL_SECONDS):
            return


def unreachable(handle: Any, node: str, halted: threading.Event) -> bool:
    """After an actor was unavailable: whether it is gone for good, its node marked dead or the
    actor dead (the cluster says so within MARKED_DEAD_SECONDS of a node's loss), rather than
    answering again. Until then it may be working: nothing else is started for its PRP."""
    deadline = time.monotonic() + MARKED_DEAD_SECONDS
    while time.monotonic() < deadline and not halted.is_set():
        if node and not node_alive(node):
            return True
        try:
            ray.get(handle.where.remote(), timeout=1.0)
            return False
        except ActorDiedError:
            return True
        except (ActorUnavailableError, GetTimeoutError):
            halted.wait(PULL_SECONDS)
    return False


def read_offset(path: Path) -> int:
    try:
        return int(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
