"""The `ray` backend, coordinator side: one detached, named actor (`ray_node.NodeLaunch`) per
PRP and attempt on a node with a free slot, pulled every `PULL_SECONDS` for its log and its
new commits.

Each pull that brings commits is a bundle of what is beyond the last commit shipped; it is
fetched into the PRP's worktree here, whose branch then moves (`reset --keep`): git on the
coordinator stays the truth, and the monitor sees the branch tip move as for a local agent.

A node lost (the actor dead, or unreachable on a node marked dead: never two agents on one
PRP) ends the launch; `recover` starts the next attempt's actor elsewhere from the last commit
shipped. A coordinator restarted with `--resume` re-attaches to the PRP's live actor.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayError

from ce import git, proc
from ce.agents.base import ExecutorJob
from ce.core.errors import CeFailure
from ce.fsio import append_log
from ce.run.backends.base import Place, Site
from ce.run.backends.ray_cluster import NAMESPACE, actor_names, connect, node_alive
from ce.run.backends.ray_node import NodeStatus, Pulled
from ce.run.backends.ray_parts import (
    CALL_SECONDS,
    PULL_SECONDS,
    Attempt,
    Journaled,
    RemoteChild,
    Stream,
    actor_class,
    first_line,
    journaled,
    kill_actor,
    let_go,
    node_load,
    own_variables,
    read_offset,
    unreachable,
)
from ce.run.load import BatchContext
from ce.run.record import LevelResult
from ce.run.validate import ValidationTarget
from ce.secrets import log_filter

_SLICE_SECONDS = 1.0  # how soon an interrupted batch stops waiting
_OFFSET_FILE = "ray-log-offset"  # in the PRP's scratch: the log bytes already copied here


class RayBackend:
    name = "ray"

    def __init__(self, ctx: BatchContext) -> None:
        self.ctx = ctx
        connect(ctx.config.backend)

    def place(self, site: Site) -> Place:
        return RayPlace(site)

    def close(self) -> None:
        pass  # each place killed its actors; the connection ends with the process


class RayPlace:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.config = site.ctx.config.backend
        self.mirror = git.Repo(site.worktree)
        self.at = Attempt()
        self.stream = Stream()
        self.halted = threading.Event()  # interrupted: no call waits any more
        self.child: RemoteChild | None = None
        self.attached: NodeStatus | None = None  # resumed: the agent found running
        self.why_lost: str | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._pump: threading.Thread | None = None

    # -- the Place protocol --------------------------------------------------------------

    def prepare(self, *, fresh: bool) -> str | None:
        live = actor_names(self.site.ctx.batch_id, self.site.prp.id)
        left = None
        if self.site.ctx.options.resume:  # the actor the journal names, not the newest found
            left = journaled(self.site.journal.path, self.site.prp.id)
        attached = left is not None and self._attach(left)
        for _, name in live:  # the others an earlier run left: nothing of them may go on
            if not attached or name != self.at.name:
                kill_actor(name)
        if attached:
            return None
        self.at.gen = max([gen for gen, _ in live] + [left.gen if left else 0])
        if left is not None:
            tip = self.mirror.rev_parse("HEAD")
            self._log(f"actor {left.actor} is gone: relaunched from the branch's tip {tip[:12]}")
        return self._new_actor()

    def command(self, job: ExecutorJob, argv: list[str] | None) -> list[str]:
        if self.attached is not None and self.attached.argv is not None:
            return list(self.attached.argv)
        return list(self._call(self.at.handle.command.remote(job, argv)))

    def spawn(self, job: ExecutorJob, argv: list[str], env: Mapping[str, str]) -> proc.Supervised:
        # Masks what this launch's environment holds, here and on the node.
        self.stream.filter = log_filter(dict(env) | self.config.runtime_env.get("env_vars", {}))
        attached, self.attached = self.attached, None
        if attached is not None and attached.pid is not None and attached.pgid is not None:
            child = RemoteChild(self, attached.pid, attached.pgid, attached.launch)
        else:
            start = self.at.handle.start.remote(job, argv, own_variables(env))
            child = RemoteChild(self, *self._call(start))
        self.child = child
        self.sync()  # an attached agent may have ended already
        self.why_lost = None
        return child

    def launched(self, child: proc.Supervised) -> dict[str, object]:
        return {
            "backend": "ray",
            "actor": self.at.name,
            "node": self.at.node,
            "pid": child.pid,
            "pgid": child.pgid,
        }

    def lost(self) -> str | None:
        return self.why_lost

    def recover(self) -> bool:
        if self.at.relaunches >= self.config.relaunches:
            self._log(f"node lost {self.at.relaunches + 1} times: not relaunched again")
            return False
        self.at.relaunches += 1
        self.at.lost = self.at.node
        let_go(self.at.name, self.at.lost, self.halted)
        failure = self._new_actor()
        if failure is not None:
            self._log(failure)
            return False
        return True

    def save_leftovers(self, repo: git.Repo) -> bool:
        if self.why_lost is not None:
            return True  # nothing left to save: what it committed was shipped
        try:
            bare, refused = self._call(self.at.handle.leftovers.remote())
        except CeFailure:
            return True
        if refused:  # where the worker looks for them (`prp_worktree.fenced_off`)
            record = git.fence.admin_dir(self.site.worktree) / git.fence.REFUSED
            with record.open("a", encoding="utf-8") as lines:
                lines.write("".join(f"{ref}\n" for ref in refused))
        self.sync()
        return bool(bare)

    def validate(
        self, target: ValidationTarget, environ: Mapping[str, str], *, bare: bool
    ) -> dict[str, LevelResult]:
        while True:  # a node lost meanwhile: again on another, from the branch as shipped
            try:
                results: dict[str, LevelResult] = self._call(
                    self.at.handle.validate.remote(target, own_variables(environ), bare=bare)
                )
                return results
            except CeFailure:
                lost = self.why_lost
                if lost is None or not self.recover():
                    raise
                self._log("validating again on another node")
                bare = False  # a new checkout, looked at again
            finally:
                self.sync()  # its lines in the log

    def interrupt(self, grace: float) -> None:
        if self.at.handle is not None and self.why_lost is None:
            self.stop_agent(grace)
        self.halted.set()  # a launch still waiting for a slot gives up

    def close(self) -> None:
        self._closing.set()
        if self._pump is not None:
            self._pump.join(CALL_SECONDS)
        if self.at.handle is None:
            return
        self.sync()
        with contextlib.suppress(RayError, CeFailure):
            self._call(self.at.handle.close.remote())
        kill_actor(self.at.name)
        self.at.handle = None

    @property
    def _scratch(self) -> Path:
        return self.site.ctx.state.scratch(self.site.prp.id)

    # -- the actor -----------------------------------------------------------------------

    def _new_actor(self) -> str | None:
        """The next attempt's actor, on a node with a free slot, with the branch as it is
        here; why it failed, or None."""
        while True:
            self.at.gen += 1
            self.at.name = f"{self.site.ctx.batch_id}/{self.site.prp.id}/{self.at.gen}"
            # Not placed yet: no node to be lost, nothing to pull (its setup's lines come with
            # the first pull after it).
            self.at.node, self.at.ready, self.why_lost = "", False, None
            self.at.handle = actor_class(self.config, self.at.name).remote(self.at.name)
            self.stream.shipped, self.stream.offset = self.mirror.rev_parse("HEAD"), 0
            try:
                self.at.node = self._call(self.at.handle.where.remote(), slot=True)
                failure: str | None = self._call(
                    self.at.handle.prepare.remote(*node_load(self.site, self._scratch, self.mirror))
                )
            except CeFailure as exc:
                if self.why_lost is None or self.at.relaunches >= self.config.relaunches:
                    return str(exc)
                self.at.relaunches += 1
                self._log(f"relaunched ({self.at.relaunches} of {self.config.relaunches})")
                self.at.lost = self.at.node or self.at.lost  # died before it said where
                let_go(self.at.name, self.at.lost, self.halted)
                continue
            self.at.ready = True
            self._log(f"on Ray node {self.at.node[:12]} as actor {self.at.name}")
            self.why_lost = None
            self._start_pump()
            return failure

    def _attach(self, left: Journaled) -> bool:
        """Resumed: the actor of the PRP's last launch, if it lives, its agent running or
        ended, is taken on; its new commits are those beyond the branch's tip here."""
        try:
            actor = ray.get_actor(left.actor, namespace=NAMESPACE)
        except ValueError:  # gone: its node, `ce cleanup`, or the coordinator gone too long
            return False
        self.at.handle, self.at.name, self.at.gen = actor, left.actor, left.gen
        try:
            status: NodeStatus = self._call(actor.status.remote())
        except CeFailure:
            return False
        if not status.prepared:
            return False
        self.at.node, self.at.ready = status.node, True
        self.stream.shipped = self.mirror.rev_parse("HEAD")
        self.stream.offset = read_offset(self._scratch / _OFFSET_FILE)
        self.attached = status if status.argv is not None else None
        shipped = f", {left.tip[:12]} shipped last" if left.tip else ""
        self._log(f"re-attached to actor {left.actor} on Ray node {self.at.node[:12]}{shipped}")
        self._start_pump()
        self.sync()
        return True

    def stop_agent(self, grace: float) -> None:
        with contextlib.suppress(CeFailure):
            self._call(self.at.handle.stop.remote(grace), timeout=grace + CALL_SECONDS)
        self.sync()

    # -- pulling -------------------------------------------------------------------------

    def _start_pump(self) -> None:
        if self._pump is None:
            self._pump = threading.Thread(
                target=self._pull_loop, name=f"ce-ray-{self.site.prp.id}", daemon=True
            )
            self._pump.start()

    def _pull_loop(self) -> None:
        failed = ""
        while not self._closing.wait(PULL_SECONDS):
            try:
                self.sync()
            except (git.GitError, OSError) as exc:  # said once; the next pull tries again
                if str(exc) != failed:
                    self._log(f"could not take what the node sent (tried again): {exc}")
                failed = str(exc)

    def sync(self) -> None:
        """One pull: the log's new bytes into the PRP's log, new commits into its branch."""
        with self._lock:
            if self.at.handle is None or not self.at.ready or self.why_lost is not None:
                return
            try:
                pulled: Pulled = self._call(
                    self.at.handle.pull.remote(self.stream.offset, self.stream.shipped)
                )
            except CeFailure:
                return  # `why_lost` says if it was the node
            self._take(pulled)

    def _take(self, pulled: Pulled) -> None:
        if pulled.log:
            data = pulled.log if self.stream.filter is None else self.stream.filter.feed(pulled.log)
            with self.site.log_path.open("ab") as log:
                log.write(data)
            self.stream.offset += len(pulled.log)
            (self._scratch / _OFFSET_FILE).write_text(str(self.stream.offset), encoding="utf-8")
        if pulled.bundle is not None and pulled.tip is not None:
            self._ship(pulled.bundle, pulled.tip)
        child = self.child
        if pulled.returncode is not None and child is not None and child.launch == pulled.launch:
            child.end(pulled.returncode)

    def _ship(self, bundle: bytes, tip: str) -> None:
        path = self._scratch / "ship.bundle"
        path.write_bytes(bundle)
        # Under the worktree lock: fetch's connectivity check reads every worktree's HEAD, and
        # one half-made by a `worktree add` meanwhile fails it ("bad object").
        with self.mirror.worktree_lock():
            self.mirror.fetch_bundle(path)
        self.mirror.move_checkout(tip)
        self.stream.shipped = tip
        self.site.journal.fact("shipped", prp=self.site.prp.id, tip=tip)

    def _call(self, ref: Any, timeout: float = CALL_SECONDS, *, slot: bool = False) -> Any:
        """An actor call's answer; CeFailure when it failed, with `why_lost` set when the
        actor is dead or its node is marked dead (never before: it may still be working).
        `slot`: waiting for a node, which an interrupted batch gives up."""
        while True:
            if slot and self.halted.is_set():
                raise CeFailure("interrupted")
            try:
                return ray.get(ref, timeout=min(timeout, _SLICE_SECONDS))
            except ActorDiedError as exc:
                self._lose(f"its Ray actor {self.at.name} died ({first_line(exc)})")
                raise CeFailure(self.why_lost or "") from exc
            except GetTimeoutError:
                timeout -= _SLICE_SECONDS
                if timeout > 0:
                    continue
                if not node_alive(self.at.node):
                    self._lose(f"Ray node {self.at.node[:12]} was lost")
                    raise CeFailure(self.why_lost or "") from None
                timeout = CALL_SECONDS  # waiting for a slot, or a long validation
            except ActorUnavailableError as exc:
                if unreachable(self.at.handle, self.at.node, self.halted):
                    self._lose(f"Ray node {self.at.node[:12] or '(starting it)'} was lost")
                    raise CeFailure(self.why_lost or "") from exc
                raise CeFailure(f"actor {self.at.name} unavailable: {first_line(exc)}") from exc
            except RayError as exc:
                raise CeFailure(f"actor {self.at.name}: {first_line(exc)}") from exc

    def _lose(self, why: str) -> None:
        if self.why_lost is None:
            self.why_lost = why
            self._log(why)
        if self.child is not None:
            self.child.end(-9)

    def _log(self, message: str) -> None:
        append_log(self.site.log_path, f"[ce] {message}\n")
