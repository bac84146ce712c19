"""The merge lane: the target branch only ever moves to a commit whose tree passed validation.

A group of branches (one, or `merge_batch`) is built on a base: merge-tree → commit-tree (two
parents) for each branch on the tip of the one before; its last tree is validated in a detached
integration worktree (skipped when it is the very tree already validated on a branch); then one
compare-and-swap moves the target from the base to the group's tip. A checkout that holds the
target is brought along under its index lock, or left untouched (`ce.run.advance`,
docs/merge-safety.md). Building on a base that is not the target yet is how the speculative
lane (`ce.run.speculation`) checks several trees at once; `merge` is one branch, one at a time.

Every object the lane relies on is held by a ref until it is merged or released, so that `git gc`
cannot prune it: `refs/ce/<batch>/head/<prp>` (the validated head) and
`refs/ce/<batch>/merge/<prp>` (the merge commit, from its creation to the advance).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ce import git
from ce.config import ValidateConfig
from ce.core.events import LaneStep, Listener, MergeStep
from ce.core.names import merge_subject
from ce.run import advance, worktree_env
from ce.run.detect import detect_test_command
from ce.run.record import LevelResult
from ce.run.state import Journal
from ce.run.validate import ValidationTarget, first_failure, run_levels

MAX_RACES = 20  # the target moved under us (the user committed): recompute and try again


class MergeOutcome(enum.Enum):
    MERGED = "merged"
    CONFLICT = "conflict"
    INVALID = "invalid"  # the merged tree failed validation
    BLOCKED = "blocked"  # the checkout holding the target refused to fast-forward


@dataclass(frozen=True, kw_only=True)
class MergeRequest:
    prp_id: str
    title: str
    branch: str
    head: str
    validation_env: Mapping[str, str] | None = None
    log: Path | None = None  # the PRP's log: the merged tree's checks are written to it too


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    outcome: MergeOutcome
    commit: str | None = None  # the merge commit
    tip: str | None = None  # what the target points at afterwards (status commit)
    onto: str | None = None  # what the target pointed at when the merge was made
    conflicts: tuple[str, ...] = ()
    validation: dict[str, LevelResult] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class Built:
    """A group's branches merged one after another on `base`, each merge commit's objects
    held by a ref; `conflict` is the place of the branch that did not merge (None: all did)."""

    requests: tuple[MergeRequest, ...]
    base: str
    commits: tuple[str, ...]  # the merge commits, one per branch merged
    tree: str | None  # the tree of the last merge commit
    conflict: int | None = None
    conflicts: tuple[str, ...] = ()  # the conflicted files

    @property
    def tip(self) -> str:
        return self.commits[-1] if self.commits else self.base

    @property
    def prps(self) -> tuple[str, ...]:
        return tuple(r.prp_id for r in self.requests)


@dataclass(frozen=True, kw_only=True)
class Landed:
    """What one compare-and-swap did: `moved` as `advance.Advance` says, and each PRP's
    result (MERGED when it moved, BLOCKED when it could not)."""

    moved: bool | None
    results: tuple[MergeResult, ...] = ()


def checkout_integration(
    checkout: git.Repo,
    path: Path,
    commit: str,
    on_created: Callable[[Path], None] | None = None,
) -> None:
    """The detached integration worktree at `commit`; `on_created` prepares a new one (the
    `.worktreeinclude` files and `setup`, as for a PRP's worktree)."""
    if (path / ".git").exists():
        git.Repo(path).force_checkout_detached(commit)
        return
    checkout.add_detached_worktree(path, commit)
    if on_created is not None:
        on_created(path)


class MergeLane:
    def __init__(
        self,
        *,
        checkout: git.Repo,
        target: str,
        integration: Path,
        config: ValidateConfig,
        journal: Journal,
        listener: Listener,
        resuming: bool = False,
        on_integration_created: Callable[[Path], None] | None = None,
        batch_id: str = "lane",
    ) -> None:
        self.checkout = checkout
        self.target = target
        self.ref = f"refs/heads/{target}"
        self.integration = integration
        self.config = config
        self.journal = journal
        self.emit = listener
        self.resuming = resuming  # an earlier run may have merged some PRPs already
        self.on_integration_created = on_integration_created
        self.validated_trees: set[str] = set()  # only the lane's thread adds to it
        self.refs = f"refs/ce/{_ref_part(batch_id)}"
        self._recovered = False

    def recover(self) -> None:
        """Once per run, before anything else touches the checkout holding the target: a
        killed run's half-done fast-forward there is finished, or its index lock dropped."""
        if not self._recovered:
            advance.recover(self.checkout, self.ref)
            self._recovered = True

    def merge(self, req: MergeRequest) -> MergeResult:
        """One branch, one at a time: built on the target, checked, landed."""
        self.recover()
        for _ in range(MAX_RACES):
            old = self.checkout.rev_parse(self.ref)
            existing = self.already_merged(req)
            if existing is not None:
                return existing
            built = self.build((req,), old)
            if built.conflict is not None:
                return self.conflict_result(built)
            validation = self.check(built, self.integration, req.validation_env)
            if first_failure(validation) is not None:
                return self.invalid_result(built, validation)
            landed = self.land(built, {req.prp_id: validation})
            if landed.moved is not None:
                return landed.results[0]
        return MergeResult(outcome=MergeOutcome.BLOCKED, message=self.kept_moving(req.prp_id))

    def kept_moving(self, prp_id: str) -> str:
        return f"{self.target} kept moving while merging {prp_id}; try --resume"

    def already_merged(self, req: MergeRequest) -> MergeResult | None:
        """Resuming: the PRP's merge an earlier run made is on the target already."""
        existing = self.find_merge(req.prp_id, req.head) if self.resuming else None
        if existing is None:
            return None
        self.release(req.prp_id)
        return MergeResult(outcome=MergeOutcome.MERGED, commit=existing)

    def release(self, prp_id: str) -> None:
        """Drop the refs that hold this PRP's objects: once it is merged (the target holds
        them) or removed from the batch."""
        self.checkout.delete_refs(self._held_refs(prp_id))

    def release_all(self) -> None:
        """Drop every ref this batch's lane holds (`ce cleanup`, the end of a batch)."""
        self.checkout.delete_refs(list(self.checkout.ref_tips([f"{self.refs}/"])))

    def _held(self, kind: str, prp_id: str) -> str:
        return f"{self.refs}/{kind}/{_ref_part(prp_id)}"

    def _held_refs(self, prp_id: str) -> list[str]:
        return [self._held(kind, prp_id) for kind in ("head", "merge")]

    def find_merge(self, prp_id: str, head: str) -> str | None:
        """The merge commit of this PRP on the target, if an earlier attempt or run made it."""
        if not self.checkout.is_ancestor(head, self.ref):
            return None
        return self.checkout.find_first_parent_commit(self.ref, merge_subject(prp_id, ""))

    def target_tip(self) -> str:
        return self.checkout.rev_parse(self.ref)

    # -- the steps ------------------------------------------------------------------------

    def build(self, requests: tuple[MergeRequest, ...], base: str) -> Built:
        """Merge the group's branches one after another on `base` (not the target yet,
        when speculating); stops at the first that conflicts. One call holds every object."""
        if self.has_tree_checks:  # a merged tree equal to a branch's is validated already
            self.validated_trees.update(
                self.checkout.rev_parse(f"{r.head}^{{tree}}") for r in requests
            )
        held = [(self._held("head", r.prp_id), r.head) for r in requests]
        commits: list[str] = []
        tree: str | None = None
        conflict: tuple[int, tuple[str, ...]] | None = None
        for place, req in enumerate(requests):
            tip = commits[-1] if commits else base
            self.emit(
                MergeStep(prp=req.prp_id, step=LaneStep.MERGE_TREE, detail=f"onto {tip[:10]}")
            )
            merged = self.checkout.merge_tree(tip, req.head)
            if merged.tree is None:
                conflict = (place, merged.conflicts)
                break
            tree = merged.tree
            commits.append(
                self.checkout.commit_tree(
                    tree, [tip, req.head], merge_subject(req.prp_id, req.title)
                )
            )
            held.append((self._held("merge", req.prp_id), commits[-1]))
        self.checkout.set_refs(held, "ce: held by the merge lane")
        return Built(
            requests=requests,
            base=base,
            commits=tuple(commits),
            tree=tree,
            conflict=None if conflict is None else conflict[0],
            conflicts=() if conflict is None else conflict[1],
        )

    def conflict_result(self, built: Built) -> MergeResult:
        assert built.conflict is not None
        prp = built.requests[built.conflict].prp_id
        self.emit(MergeStep(prp=prp, step=LaneStep.CONFLICT, detail=", ".join(built.conflicts)))
        return MergeResult(outcome=MergeOutcome.CONFLICT, conflicts=built.conflicts)

    @staticmethod
    def invalid_result(built: Built, validation: dict[str, LevelResult]) -> MergeResult:
        return MergeResult(
            outcome=MergeOutcome.INVALID, commit=built.tip, validation=dict(validation)
        )

    def needs_check(self, built: Built) -> bool:
        """Whether the group's tree must be checked (else it passes as it is)."""
        return self.has_tree_checks and built.tree not in self.validated_trees

    def check(
        self, built: Built, worktree: Path, env: Mapping[str, str] | None
    ) -> dict[str, LevelResult]:
        """The group's merged tree, checked in `worktree` (any thread: one per worktree)."""
        if built.tree is None or not self.needs_check(built):
            return {}
        prp = built.requests[-1].prp_id
        self.emit(MergeStep(prp=prp, step=LaneStep.VALIDATE, detail=f"tree {built.tree[:10]}"))
        checkout_integration(self.checkout, worktree, built.tip, self.on_integration_created)
        target = ValidationTarget(  # the log of the PRP at the tree's tip has its checks
            worktree=worktree,
            base=built.base,
            head=built.tip,
            branch_checks=False,
            log=built.requests[-1].log,
        )
        with worktree_env.committed_only_in_lane(worktree):
            return run_levels(target, self.config, (2, 3, 4), env)

    def land(self, built: Built, validation: Mapping[str, dict[str, LevelResult]]) -> Landed:
        """The one compare-and-swap of the target from the group's base to its tip, with the
        refs that held its objects released in the same transaction."""
        if built.tree is not None:
            self.validated_trees.add(built.tree)
        old, tip, prps = built.base, built.tip, built.prps
        where = {"prp": prps[0]} if len(prps) == 1 else {"prps": list(prps)}
        self.journal.intent(
            "advance", **where, ref=self.ref, old=old, new=tip, merges=list(built.commits)
        )
        self.emit(
            MergeStep(prp=prps[-1], step=LaneStep.ADVANCE, detail=f"{self.target} → {tip[:10]}")
        )
        release = [ref for prp in prps for ref in self._held_refs(prp)]
        advanced = advance.advance(self.checkout, self.ref, old, tip, release)
        if not advanced.moved:
            return Landed(moved=advanced.moved, results=self._refused(built, advanced.reason))
        results = []
        for onto, req, commit in zip(
            (old, *built.commits), built.requests, built.commits, strict=False
        ):
            self.journal.fact("merged", prp=req.prp_id, merge=commit, tip=commit)
            self.emit(MergeStep(prp=req.prp_id, step=LaneStep.MERGED, detail=commit[:10]))
            results.append(
                MergeResult(
                    outcome=MergeOutcome.MERGED,
                    commit=commit,
                    tip=commit,
                    onto=onto,
                    validation=validation.get(req.prp_id, {}),
                )
            )
        return Landed(moved=True, results=tuple(results))

    def _refused(self, built: Built, reason: str) -> tuple[MergeResult, ...]:
        return tuple(
            MergeResult(
                outcome=MergeOutcome.BLOCKED,
                commit=commit,
                message=f"{req.prp_id} is validated and ready, but {self.target} was not "
                f"advanced: {reason} Then run again with --resume.",
            )
            for req, commit in zip(built.requests, built.commits, strict=True)
        )

    @cached_property
    def has_tree_checks(self) -> bool:
        """Whether validating a merged tree can find anything (else skip the checkout)."""
        config = self.config
        if config.level2 is None or config.level2.strip() or config.level4.strip():
            return True
        if config.level3 is None:
            return detect_test_command(self.checkout.path) is not None
        return bool(config.level3.strip())

    def commit_file(self, path: str, text: str, message: str) -> bool:
        """Commit one file's new content straight onto the target (the `.gitignore` entry)."""
        for _ in range(MAX_RACES):
            old = self.checkout.rev_parse(self.ref)
            tree = self.checkout.tree_with_file(old, path, text)
            commit = self.checkout.commit_tree(tree, [old], message)
            advanced = advance.advance(self.checkout, self.ref, old, commit)
            if advanced.moved is not None:
                return advanced.moved
        return False


def _ref_part(name: str) -> str:
    """`name` as one component of a ref (`git check-ref-format`): `PRP-43.2.1` stays as is."""
    part = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "-", name).strip(".-")
    return part + "-" if part.endswith(".lock") else part or "-"
