"""The Ray cluster as `ce` sees it: the connection, the nodes with slots, each node's
preflight, and the actors a batch left running (`ce cleanup`)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ce import __version__
from ce.config import BackendConfig
from ce.core.errors import CeError
from ce.run.backends.ray_node import node_check
from ce.run.load import BatchContext

NAMESPACE = "ce"  # every actor of ce, named <batch>/<prp>/<attempt>
_PREFLIGHT_SECONDS = 120.0
_REACH_SECONDS = 5.0


def connect(config: BackendConfig) -> None:
    """Join the cluster at `config.address` (once per process); CeError if it cannot."""
    if ray.is_initialized():
        return
    _check_reachable(config.address)  # ray.init would wait for an unreachable one for ever
    # `uv run ce` would otherwise make Ray ship this directory and start every worker with uv.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        ray.init(
            address=config.address,
            namespace=NAMESPACE,
            log_to_driver=False,
            configure_logging=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise CeError(
            f"[backend] address {config.address}: no Ray cluster could be joined "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}). "
            "Start one with `ray start --head`, then nodes with `ray start --address HEAD:6379 "
            "--resources '{\"ce_slot\": 4}'`, or give its address with --ray-address."
        ) from None


def _check_reachable(address: str) -> None:
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_REACH_SECONDS).close()
    except OSError as exc:
        raise CeError(
            f"[backend] address {address}: nothing answers there ({exc.strerror or exc}). "
            "Give the address of the head's GCS (`ray start --head` prints it; port 6379 by "
            "default) with --ray-address, or start the cluster first."
        ) from None


def slot_nodes(config: BackendConfig) -> list[dict[str, Any]]:
    """The live nodes that offer the slot resource."""
    return [
        node
        for node in _nodes()
        if node.get("Alive") and node.get("Resources", {}).get(config.slot_resource, 0) > 0
    ]


def preflight_nodes(ctx: BatchContext) -> None:
    """One task per node with slots: git, bash and the executor as a local run checks them;
    CeError naming each node that lacks something."""
    config = ctx.config.backend
    connect(config)
    nodes = slot_nodes(config)
    if not nodes:
        raise CeError(
            f"no node of the Ray cluster at {config.address} offers the {config.slot_resource} "
            "resource: start nodes with `ray start --address HEAD:6379 --resources "
            f"'{{\"{config.slot_resource}\": 4}}'`."
        )
    check = ray.remote(node_check)
    options: dict[str, Any] = {"num_cpus": 0}
    if config.runtime_env:
        options["runtime_env"] = dict(config.runtime_env)
    refs = {
        _node_name(node): (
            node["NodeID"],
            check.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                **options,
            ).remote(ctx.executor, __version__),
        )
        for node in nodes
    }
    problems = []
    for name, (node_id, ref) in sorted(refs.items()):
        try:
            missing = ray.get(ref, timeout=_PREFLIGHT_SECONDS)
        except RayError as exc:
            if not node_alive(node_id):
                continue  # lost since it was listed (not yet marked dead): no PRP goes there
            missing = [_not_run(exc)]
        problems += [f"  node {name}: {what}" for what in missing]
    if problems:
        raise CeError(
            f"Ray nodes cannot run the {ctx.config.executor} executor:\n"
            + "\n".join(problems)
            + "\nInstall what is missing on those nodes (or start them without the "
            f"{config.slot_resource} resource), then run again."
        )


def _not_run(exc: RayError) -> str:
    """Why a node's check did not run, from the error its worker raised (Ray's text ends with
    the exception itself: a check that cannot be unpickled there, ce or what ce imports)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    if last == "ModuleNotFoundError: No module named 'ce'":
        return f"ce is not installed there (ce {__version__} is needed, as here)"
    if last.startswith(("ModuleNotFoundError:", "ImportError:")):
        return (
            f"ce cannot be imported there ({last}): install ce {__version__} there with its "
            "dependencies (as here)"
        )
    return f"the check could not run ({last})"


def node_alive(node_id: str) -> bool:
    """False once the cluster marked the node dead (an unknown node: alive, to be safe)."""
    try:
        nodes = _nodes()
    except RayError:
        return True
    for node in nodes:
        if node.get("NodeID") == node_id:
            return bool(node.get("Alive"))
    return True


def actor_names(batch_id: str, prp_id: str | None = None) -> list[tuple[int, str]]:
    """The live actors of a batch (of one PRP), as (attempt, name), oldest first."""
    prefix = f"{batch_id}/" if prp_id is None else f"{batch_id}/{prp_id}/"
    found = []
    for name in ray.util.list_named_actors():
        if isinstance(name, str) and name.startswith(prefix):
            attempt = name.rpartition("/")[2]
            found.append((int(attempt) if attempt.isdigit() else 0, name))
    return sorted(found)


def stop_actors(config: BackendConfig, batch_id: str) -> list[str]:
    """`ce cleanup`: every actor of the batch killed (its agent stopped first); their names."""
    connect(config)
    names = [name for _, name in actor_names(batch_id)]
    for name in names:
        try:
            actor = ray.get_actor(name, namespace=NAMESPACE)
            ray.get(actor.close.remote(), timeout=_PREFLIGHT_SECONDS)
        except (ValueError, RayError):
            pass  # gone already, or its node: nothing of it runs there any more
        with contextlib.suppress(ValueError, RayError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    return names


def _nodes() -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return nodes


def _node_name(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({str(node.get('NodeID', ''))[:12]})"
