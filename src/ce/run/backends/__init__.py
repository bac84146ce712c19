"""Where an attempt runs (DESIGN.md § Backends): the worker asks its `Place` to prepare the
checkout, start the executor, commit what it left, validate the branch and let go, and never
knows which machine did it.

`local` (the default) is this machine: the PRP's worktree, its process group. `ray` runs each
launch in an actor on a node of a Ray cluster (`ce.run.backends.ray_place`), imported only
when asked for, so that `ce` works without Ray installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ce.config import load_config
from ce.core.errors import CeError

if TYPE_CHECKING:  # a Ray node imports this package for `ray_node` alone: not the batch's
    from ce.run.backends.base import Backend
    from ce.run.load import BatchContext

RAY_MISSING = (
    "--backend ray needs Ray, which is not installed: install ce with its extra "
    "(`pip install 'ce[ray]'`, or `uv tool install 'ce[ray]'`), or run with --backend local."
)


def open_backend(ctx: BatchContext) -> Backend:
    if ctx.config.backend.name == "ray":
        require_ray()
        from ce.run.backends.ray_place import RayBackend

        return RayBackend(ctx)
    from ce.run.backends.local import LocalBackend

    return LocalBackend()


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        raise CeError(RAY_MISSING)


def preflight(ctx: BatchContext) -> None:
    """Before anything changes: the backend can run this batch's executor (CeError if not)."""
    if ctx.config.backend.name != "ray":
        return
    require_ray()
    from ce.run.backends.ray_cluster import preflight_nodes

    preflight_nodes(ctx)


def stop_actors(root: Path, batch_ids: Sequence[str], address: str | None) -> list[str]:
    """`ce cleanup`: the batches' Ray actors stopped (with `ray` configured, or `address`
    given); their names."""
    config = load_config(root, {"backend": {"address": address}} if address else None)
    if address is None and config.backend.name != "ray":
        return []
    require_ray()
    from ce.run.backends.ray_cluster import stop_actors as stop_batch_actors

    return [name for batch_id in batch_ids for name in stop_batch_actors(config.backend, batch_id)]
