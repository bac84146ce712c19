"""Phases 1-3 of a run: parse and load, check readiness, plan. Nothing is changed here."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from ce import git
from ce.agents.base import Executor
from ce.agents.registry import make_executor
from ce.config import Config, load_config
from ce.core.errors import CeError, NextStep, Step
from ce.core.names import branch_name, integration_worktree_name, worktree_name
from ce.core.vocab import AGENT_PRESETS
from ce.plan.batch import BatchPlan, plan_batch
from ce.prp.discover import discover_batch, find_external, resolve_prps
from ce.prp.model import Prp, StatusClass
from ce.run import speculate
from ce.run.checkpoint import Names, recorded_names
from ce.run.repository import open_repository
from ce.run.retry_request import requested
from ce.run.state import StateDir
from ce.run.tracked import untracked_message, untracked_prps
from ce.run.worktree_env import WorktreeSettings, relpath


@dataclass(frozen=True, kw_only=True)
class Overrides:
    """Flags that override the configuration (None: take the configuration's value)."""

    executor: str | None = None
    model: str | None = None
    max_parallel: int | None = None
    timeout_minutes: float | None = None
    auto_review: bool | None = None
    schedule: str | None = None
    conflict_policy: str | None = None
    push: bool | None = None
    max_budget_usd: float | None = None  # per PRP: the agent preset's own budget flag
    batch_budget_usd: float | None = None
    backend: str | None = None
    ray_address: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What the user asked for on the command line."""

    prps: tuple[str, ...] = ()
    batch: str | None = None
    stage: int | None = None
    resume: bool = False
    continue_on_error: bool = False
    overrides: Overrides = Overrides()
    retry: tuple[str, ...] = ()  # PRPs to run again from the target (ids once loaded)
    retry_stage: bool = False  # with `stage`: every unmerged PRP of it


@dataclass(frozen=True, kw_only=True)
class BatchContext:
    """Everything a run needs, checked: the engine starts from here."""

    options: RunOptions
    config: Config
    repo: git.Repo
    root: Path
    batch_id: str
    target: str
    plan: BatchPlan
    done: frozenset[str]  # PRPs of the plan already done before this run (status words)
    executor: Executor
    state: StateDir
    warnings: tuple[str, ...]
    # Resuming: each PRP's branch and worktree as an earlier run recorded them. The names are
    # computed from the title and the configuration, which may have changed since.
    recorded: Mapping[str, Names] = field(default_factory=dict)

    def prp(self, prp_id: str) -> Prp:
        return self.plan.prps[prp_id]

    @property
    def worktree_root(self) -> Path:
        if self.config.worktrees.worktree_root is None:
            return self.root.parent
        return (self.root / self.config.worktrees.worktree_root).resolve()

    def worktree(self, prp_id: str) -> Path:
        if prp_id in self.recorded:
            return Path(self.recorded[prp_id].worktree)
        return self._worktree_base / worktree_name(self.root.name, prp_id)

    @cached_property
    def _worktree_base(self) -> Path:
        """`worktree_path`'s base, resolved once for the batch rather than once per PRP."""
        return (self.root / self.worktree_root).resolve()

    def branch(self, prp_id: str) -> str:
        if prp_id in self.recorded:
            return self.recorded[prp_id].branch
        return _branch_name(prp_id, self.prp(prp_id).title)

    def relpath(self, prp: Prp) -> str | None:
        return relpath(self.root, prp)

    @cached_property
    def worktree_settings(self) -> WorktreeSettings:
        return WorktreeSettings(
            config=self.config,
            root=self.root,
            batch_id=self.batch_id,
            order=self.plan.plan.sorted_order,
        )

    @property
    def integration_worktree(self) -> Path:
        return self.worktree_root / integration_worktree_name(self.root.name)

    @cached_property
    def merge_parallel(self) -> int:
        return speculate.defaults(self.config.lane.merge_parallel, os.cpu_count())

    def integration_worktrees(self) -> list[Path]:
        """The lane's integration worktrees: one per merged tree checked at once."""
        first = self.integration_worktree
        return [
            first,
            *(first.with_name(f"{first.name}-{n}") for n in range(2, self.merge_parallel + 1)),
        ]


def worktree_path(repo_root: Path, prp_id: str, root: Path | None = None) -> Path:
    """`<root>/<repo>-prp-43.2.1`; root defaults to the repository's parent directory.

    A relative `root` is taken from the repository (`worktree_root = ".."` in the config).
    """
    base = repo_root.parent if root is None else repo_root / root
    return base.resolve() / worktree_name(repo_root.name, prp_id)


@functools.cache
def _branch_name(prp_id: str, title: str) -> str:
    branch = branch_name(prp_id, title)
    git.require_branch_name(branch)  # runs `git check-ref-format`: once per PRP
    return branch


def config_overrides(options: RunOptions) -> dict[str, object]:
    flags = options.overrides
    return {
        "executor": flags.executor,
        "max_parallel": flags.max_parallel,
        "timeout_minutes": flags.timeout_minutes,
        "auto_review": flags.auto_review,
        "schedule": flags.schedule,
        "conflict_policy": flags.conflict_policy,
        "push": flags.push,
        "batch_budget_usd": flags.batch_budget_usd,
        "backend": {
            key: value
            for key, value in (("name", flags.backend), ("address", flags.ray_address))
            if value is not None
        }
        or None,
    }


def with_prp_budget(config: Config, budget: float | None) -> Config:
    """`--max-budget-usd`: the `max_budget_usd` of the chosen agent preset's table."""
    if budget is None:
        return config
    if config.executor not in AGENT_PRESETS:
        raise CeError(
            f"--max-budget-usd needs an agent executor ({', '.join(AGENT_PRESETS)}): the "
            f"{config.executor} executor reports no cost. Drop the option, or choose one with "
            "--executor."
        )
    tables = config.executor_tables
    table = getattr(tables, config.executor).model_copy(update={"max_budget_usd": budget})
    return config.model_copy(
        update={"executor_tables": tables.model_copy(update={config.executor: table})}
    )


def load(options: RunOptions, cwd: Path, *, executor_preflight: bool = True) -> BatchContext:
    repo, root = open_repository(cwd)
    # Without the preflight (a dry run), a wrong executor name is one of its readiness findings.
    loaded = load_config(root, config_overrides(options), lenient_executor=not executor_preflight)
    config = with_prp_budget(loaded, options.overrides.max_budget_usd)
    prps, warnings, plan, batch_id = plan_request(options, root / config.prp_dir, cwd)
    done = frozenset(p.id for p in prps if p.status_class is StatusClass.DONE)
    executor = make_executor(config.executor, config)
    state = StateDir.of(root)
    if options.retry or options.retry_stage:  # a retry continues the batch's earlier run
        options = _retry_options(options, plan, prps, state, batch_id)
    target, moved = _target_branch(repo, state, batch_id, resume=options.resume)
    context = BatchContext(
        options=options,
        config=config,
        repo=repo,
        root=root,
        batch_id=batch_id,
        target=target,
        plan=plan,
        done=done,
        executor=executor,
        state=state,
        warnings=(*warnings, *plan.warnings, *moved),
        recorded=recorded_names(state, batch_id) if options.resume else {},
    )
    if executor_preflight:
        check_distinct_names(context, [p for p in plan.plan.sorted_order if p not in done])
        executor.preflight(root)
    return context


class Planned(NamedTuple):
    prps: list[Prp]
    warnings: list[str]  # the discovery's; the PRPs' own are the plan's
    plan: BatchPlan
    batch_id: str


def plan_request(options: RunOptions, prp_dir: Path, cwd: Path) -> Planned:
    """The PRPs asked for, checked and planned (what `ce lint` reports, without git)."""
    prps, warnings, found_batch = _select(options, prp_dir, cwd)
    missing = {d for p in prps for d in p.dependencies} - {p.id for p in prps}
    external = find_external(prp_dir, sorted(missing)) if missing else {}
    plan = plan_batch(prps, external=external, model_override=options.overrides.model)
    return Planned(prps, warnings, plan, found_batch or _batch_id(prps))


def _retry_options(
    options: RunOptions, plan: BatchPlan, prps: Sequence[Prp], state: StateDir, batch_id: str
) -> RunOptions:
    done = {p.id: str(p.path) for p in prps if p.status_class is StatusClass.DONE}
    retry = requested(
        options.retry,
        stage=options.stage,
        whole_stage=options.retry_stage,
        stages=plan.plan.stages,
        done=done,
        batch=batch_id,
    )
    if not state.checkpoint(batch_id).exists() and not state.journal(batch_id).exists():
        raise CeError(
            f"Batch {batch_id} has not run yet: there is nothing to retry. "
            f"Run it first (`ce batch-exe --batch {batch_id}`)."
        )
    return replace(options, retry=retry, resume=True)


def check_distinct_names(ctx: BatchContext, prp_ids: Sequence[str]) -> None:
    """Two PRPs must never share a branch, a worktree or a log, even on a case-insensitive
    file system: `PRP-7.A` and `PRP-7.a`, or `PRP-1.2` and `PRP-1-2` with the same title."""
    seen: dict[tuple[str, str], str] = {}
    worktrees, logs = str(ctx._worktree_base).rstrip("/"), str(ctx.state.logs).rstrip("/")
    for prp_id in prp_ids:  # a name without "/" spelled as str(Path) would, with no Path
        no_path = "/" not in prp_id and prp_id not in ctx.recorded
        tree = worktree_name(ctx.root.name, prp_id)
        worktree = f"{worktrees}/{tree}" if no_path else str(ctx.worktree(prp_id))
        log = f"{logs}/{prp_id}.log" if no_path else str(ctx.state.log(prp_id))
        names = (("branch", ctx.branch(prp_id)), ("worktree", worktree), ("log", log))
        for kind, name in names:
            other = seen.setdefault((kind, name.casefold()), prp_id)
            if other != prp_id:
                raise CeError(
                    f"{ctx.prp(other).path} ({other}) and {ctx.prp(prp_id).path} ({prp_id}) "
                    f"would share the {kind} {name} (names differing only in case, or in "
                    "'.', '_' and '-', are the same there). Give one of them another "
                    "`prp_id` or `title`."
                )


def _select(
    options: RunOptions, prp_dir: Path, cwd: Path
) -> tuple[list[Prp], list[str], str | None]:
    if options.batch is not None and options.prps:
        raise CeError("Give either --batch N or PRP paths/ids, not both.")
    if options.batch is not None:
        found = discover_batch(prp_dir, options.batch)
        prps = [*found.runnable, *(p for p in found.skipped if p.status_class is StatusClass.DONE)]
        skipped = [
            w for p in found.skipped if p.status_class is not StatusClass.DONE for w in p.warnings
        ]
        return sorted(prps, key=lambda p: p.id), [*found.warnings, *skipped], found.batch_id
    if not options.prps:
        raise CeError(
            "Nothing to run: give --batch N (PRPs named PRP-N.*.md in the PRP directory) "
            "or PRP files/ids, e.g. `ce batch-exe PRP-43.2.1 PRP-43.2.2`."
        )
    return list(resolve_prps(options.prps, prp_dir, cwd)), [], None


def _batch_id(prps: list[Prp]) -> str:
    ids = {p.batch_id for p in prps}
    if len(ids) == 1 and None not in ids:
        only = next(iter(ids))
        assert only is not None
        return only
    if len(prps) == 1:
        return prps[0].id
    digest = hashlib.sha256("\n".join(sorted(p.id for p in prps)).encode()).hexdigest()
    return f"custom-{digest[:8]}"


def _target_branch(
    repo: git.Repo, state: StateDir, batch_id: str, *, resume: bool
) -> tuple[str, tuple[str, ...]]:
    """The branch the batch merges into, and a warning when it is not the one checked out.

    Fixed when the batch starts: a resume merges into the saved target whatever is checked out
    now, so a PRP already merged is never merged again into another branch."""
    current = repo.current_branch()
    saved = _saved_target(state, batch_id) if resume else None
    if saved is None:
        return _current_branch(current), ()
    if not repo.branch_exists(saved):
        raise CeError(
            f"Batch {batch_id} merges into {saved} (saved when it started), but there is no "
            f"branch {saved} any more. Restore it (e.g. `git branch {saved} <commit>`) and resume."
        )
    if saved == current:
        return saved, ()
    here = f"{current} is checked out" if current else "HEAD is detached"
    return saved, (
        f"batch {batch_id} merges into {saved}, its target since it started; {here}: "
        f"ce goes on merging into {saved} and leaves {current or 'HEAD'} alone",
    )


def _saved_target(state: StateDir, batch_id: str) -> str | None:
    from ce.run.checkpoint import Checkpoint, journal_target

    path = state.checkpoint(batch_id)
    try:
        return Checkpoint.read(path).target or None
    except CeError:
        return journal_target(state, batch_id)  # lost: the resume rebuilds it


def _current_branch(branch: str | None) -> str:
    if branch is None:
        raise CeError(
            "HEAD is detached: ce merges into the current branch. "
            "Check out the branch to merge into (e.g. `git switch main`) and run again."
        )
    return branch


def check_tracked_prps(context: BatchContext) -> None:
    """A PRP file git does not track cannot carry its status to the target: its `completed`
    never lands, and the next run starts it again from scratch."""
    to_run = [context.prp(i) for i in context.plan.plan.sorted_order if i not in context.done]
    untracked = untracked_prps(context.repo, context.root, to_run)
    if untracked:
        raise CeError(untracked_message(untracked, context.target))


def check_clean(context: BatchContext) -> None:
    check_tracked_prps(context)
    check_no_changes(context)


def check_no_changes(context: BatchContext) -> None:
    dirty = context.repo.dirty_tracked()
    if dirty:
        listed = "\n".join(f"  {name}" for name in dirty[:20])
        more = f"\n  ... and {len(dirty) - 20} more" if len(dirty) > 20 else ""
        raise CeError(
            f"The repository at {context.root} has uncommitted changes to tracked files:\n"
            f"{listed}{more}\n"
            "Commit or stash them first: the batch merges into this checkout. "
            "(Untracked files are fine and never touched.)"
        )


def check_leftovers(context: BatchContext, prp_ids: list[str]) -> None:
    """A worktree or branch from an earlier run is adopted by --resume, never silently reused."""
    branches = {prp_id: context.branch(prp_id) for prp_id in prp_ids}
    # One `for-each-ref` for every PRP branch: a batch may hold hundreds of PRPs.
    existing = context.repo.ref_tips([f"refs/heads/{b}" for b in branches.values()])
    problems = []
    for prp_id, branch in branches.items():
        if f"refs/heads/{branch}" in existing:
            problems.append(f"  {prp_id}: branch {branch} already exists")
        if context.worktree(prp_id).exists():
            problems.append(f"  {prp_id}: {context.worktree(prp_id)} already exists")
    if not problems:
        return
    batch = context.batch_id if context.options.batch else None
    raise CeError(
        "An earlier run left work behind:\n" + "\n".join(problems),
        next_step=NextStep(step=Step.LEFT_BEHIND, batch_id=batch),
    )
