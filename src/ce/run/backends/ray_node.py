"""What runs on a Ray node for one PRP: `NodeLaunch`, the actor the coordinator drives.

The node gets the branch as a git bundle through the object store and checks it out in a
directory of its own; the `.worktreeinclude` files come as bytes; `setup`, the executor and the
branch validation run there. The coordinator pulls (`pull`) the log's new bytes and, as a
bundle, the commits beyond the last one it has: this module never reaches back to it.

Nothing here imports Ray: the coordinator makes the class an actor (`ray.remote(NodeLaunch)`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ce import __version__, git, proc
from ce.agents.base import Executor, ExecutorJob
from ce.config import ValidateConfig
from ce.core.errors import CeError
from ce.core.events import Event
from ce.fsio import append_log
from ce.git.bundles import clone_bundle
from ce.proc.shim import ShimChild, spawn_shim
from ce.prp.model import Prp
from ce.run import prp_worktree, worktree_env
from ce.run.record import LevelResult
from ce.run.validate import LEVELS, ValidationTarget, run_levels
from ce.run.worktree_env import WorktreeSettings

_MOST_LOG_BYTES = 1 << 20  # per pull: a burst of output comes over a few pulls
HEARTBEAT_FILE = "heartbeat"  # touched at every pull: the shim's sign of the coordinator


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """What a node needs to work on one PRP."""

    prp: Prp
    branch: str
    settings: WorktreeSettings
    relpath: str | None  # the PRP file in the repository (None: `prp_text` is written out)
    prp_text: str
    executor: Executor
    validation: ValidateConfig
    grace: float
    coordinator_timeout: float  # the agent is stopped once no pull came for this long


@dataclass(frozen=True, kw_only=True)
class Pulled:
    log: bytes  # the log's bytes from the offset asked for
    tip: str | None  # the checkout's HEAD
    bundle: bytes | None  # the commits beyond the one the coordinator has, if any
    returncode: int | None  # the agent's, once it ended
    launch: int  # which of the agents started here `returncode` is of (1, 2, ...)


@dataclass(frozen=True, kw_only=True)
class NodeStatus:
    """What a coordinator re-attaching finds."""

    node: str
    prepared: bool
    argv: tuple[str, ...] | None  # the agent started, if one was
    pid: int | None
    pgid: int | None
    returncode: int | None
    launch: int


class NodeLaunch:
    """One PRP's checkout on this node and the agent working in it (one at a time)."""

    def __init__(self, name: str) -> None:
        self.node = _node_id()
        self.home = Path(tempfile.gettempdir()) / "ce-ray" / name.replace("/", "-") / self.node[:12]
        self.checkout = self.home / "checkout"
        self.log = self.home / "log"
        self.scratch = self.home / "scratch"
        self.spec: NodeSpec | None = None
        self.child: ShimChild | None = None
        self.argv: tuple[str, ...] | None = None
        self.launches = 0
        self.setup_group: int | None = None  # `setup` running: stopped with the agent
        self._lock = threading.Lock()  # a pull and a stop at once: one git at a time here

    def where(self) -> str:
        return self.node

    def prepare(self, spec: NodeSpec, bundle: bytes, includes: dict[str, bytes]) -> str | None:
        """The checkout (the branch as the coordinator has it), its included files, `setup`;
        why it failed, or None."""
        self.spec = spec
        shutil.rmtree(self.home, ignore_errors=True)
        self.scratch.mkdir(parents=True)
        self.log.touch()
        (self.scratch / "branch.bundle").write_bytes(bundle)
        clone_bundle(self.scratch / "branch.bundle", self.checkout, spec.branch)
        repo = git.Repo(self.checkout)
        git.fence.install(repo, self.checkout, spec.branch)
        copied = _write_included(self.checkout, includes)
        if copied:
            append_log(self.log, f"[ce] {worktree_env.INCLUDE_FILE}: copied {', '.join(copied)}\n")
        setup = spec.settings.config.worktrees.setup
        if setup.strip():
            error = worktree_env.run_setup(
                setup,
                self.checkout,
                env=worktree_env.setup_environment(spec.settings, spec.prp.id, self.checkout),
                log_path=self.log,
                timeout_minutes=spec.settings.config.run.timeout_minutes,
                grace=spec.grace,
                on_group=self._track_setup,
            )
            if error is not None:
                return f"on node {self.node[:12]}: {error}"
        worktree_env.record_environment(self.checkout, empty=not copied and not setup.strip())
        return None

    def command(self, job: ExecutorJob, argv: list[str] | None) -> list[str]:
        return argv or self._spec.executor.command(self._job(job))

    def start(self, job: ExecutorJob, argv: list[str], own: dict[str, str]) -> tuple[int, int, int]:
        """`own`: ce's variables for the PRP (CE_BASE, CE_PORT_BASE)."""
        env = own | self._job(job).environment(os.environ)
        self.launches += 1
        self._beat()
        # Under the shim: out of this worker, so that nothing the agent started outlives a stop,
        # this worker's death (Ray kills only its direct children) or its coordinator's.
        self.child = spawn_shim(
            argv,
            cwd=self.checkout,
            env=env,
            status_path=self.scratch / f"shim-{self.launches}.json",
            log_path=self.log,
            watch_pid=os.getpid(),
            heartbeat=self.home / HEARTBEAT_FILE,
            heartbeat_seconds=self._spec.coordinator_timeout,
            grace=self._spec.grace,
        )
        self.argv = tuple(argv)
        return self.child.pid, self.child.pgid, self.launches

    def pull(self, offset: int, shipped: str) -> Pulled:
        with self._lock:
            self._beat()  # the coordinator is there
            code = self.child.poll() if self.child is not None else None
            with self.log.open("rb") as log:  # read after the poll: all of an ended agent's
                log.seek(offset)
                data = log.read(_MOST_LOG_BYTES)
            repo = git.Repo(self.checkout)
            tip = repo.try_rev_parse("HEAD")
            bundle = None
            if tip is not None and tip != shipped:
                path = self.scratch / "ship.bundle"
                repo.create_bundle(path, "HEAD", f"^{shipped}")
                bundle = path.read_bytes()
            return Pulled(log=data, tip=tip, bundle=bundle, returncode=code, launch=self.launches)

    def stop(self, grace: float) -> int | None:
        if self.setup_group is not None:
            proc.kill_pgid(self.setup_group, grace)
        if self.child is None:
            return None
        return self.child.stop(grace)

    def leftovers(self) -> tuple[bool, list[str]]:
        """Commit what the agent left uncommitted: whether nothing else is left here, and the
        refs the fence refused the agent (its other branches, tags)."""
        with self._lock:
            bare = prp_worktree.save_leftovers(
                git.Repo(self.checkout), self._spec.prp.id, _ignore_notice
            )
            return bare, git.fence.refused(self.checkout)

    def validate(
        self, target: ValidationTarget, own: dict[str, str], *, bare: bool
    ) -> dict[str, LevelResult]:
        here = replace(target, worktree=self.checkout, log=self.log, commits=None)
        environ = dict(os.environ) | own
        with worktree_env.committed_only(self.checkout, self.scratch / "validate", bare=bare):
            return run_levels(here, self._spec.validation, LEVELS, environ)

    def status(self) -> NodeStatus:
        child = self.child
        return NodeStatus(
            node=self.node,
            prepared=self.spec is not None,
            argv=self.argv,
            pid=child.pid if child else None,
            pgid=child.pgid if child else None,
            returncode=child.poll() if child else None,
            launch=self.launches,
        )

    def close(self) -> None:
        """Nothing of this PRP is left on the node."""
        if self.spec is not None:
            self.stop(self.spec.grace)
        shutil.rmtree(self.home, ignore_errors=True)

    def _beat(self) -> None:
        (self.home / HEARTBEAT_FILE).touch()

    def _track_setup(self, pgid: int | None) -> None:
        self.setup_group = pgid

    @property
    def _spec(self) -> NodeSpec:
        if self.spec is None:
            raise CeError("the node was given no PRP (prepare was not called)")
        return self.spec

    def _job(self, job: ExecutorJob) -> ExecutorJob:
        """The coordinator's job with this node's paths."""
        spec = self._spec
        prp_path = self.checkout / spec.relpath if spec.relpath else self.scratch / "prp.md"
        if not prp_path.is_file():
            prp_path.write_text(spec.prp_text, encoding="utf-8")
        return replace(
            job,
            prp_path=prp_path,
            repo_root=self.checkout,
            worktree=self.checkout,
            scratch=self.scratch,
        )


def node_check(executor: Executor, version: str) -> list[str]:
    """What this node lacks to run `executor` with ce `version` (the checks a local run makes,
    plus the command executor's program); [] when nothing."""
    missing = []
    if __version__ != version:  # the checkout, setup and validation are this ce's
        missing.append(f"ce {__version__} is installed there, ce {version} is needed (as here)")
    missing += [f"{tool} is not on PATH" for tool in ("git", "bash") if shutil.which(tool) is None]
    try:
        git.require_git()
        executor.preflight(Path(tempfile.gettempdir()))
    except CeError as exc:
        missing.append(str(exc))
    program = _program(executor)
    if program is not None and shutil.which(program) is None:
        missing.append(f"{program} (the [executor.command] program) is not on PATH")
    return missing


def node_id() -> str:
    return _node_id()


def _program(executor: Executor) -> str | None:
    template = getattr(executor, "template", None)
    if not isinstance(template, str) or not template.split():
        return None
    first = template.split()[0]
    return None if "{" in first else first


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


def _write_included(checkout: Path, includes: Mapping[str, bytes]) -> list[str]:
    written = []
    for name, data in sorted(includes.items()):
        target = checkout / name
        if not Path(os.path.normpath(target)).is_relative_to(checkout) or target.exists():
            continue  # the checkout's own file wins; nothing is written outside it
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(name)
    return written


def _ignore_notice(event: Event) -> None:
    pass  # the coordinator sees the commit in its branch
