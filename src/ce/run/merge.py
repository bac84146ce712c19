"""The merge lane: the target branch only ever moves to a commit whose tree passed validation.

merge-tree → commit-tree (two parents) → validate the merged tree in a detached integration
worktree (skipped when it is the very tree already validated on the branch) → a status commit
for the PRP file → compare-and-swap of the target. A checkout that holds the target is brought
along under its index lock, or left untouched (`ce.run.advance`, docs/merge-safety.md).

Every object the lane relies on is held by a ref until it is merged or released, so that `git gc`
cannot prune it: `refs/ce/<batch>/head/<prp>` (the validated head) and
`refs/ce/<batch>/merge/<prp>` (the merge commit, from its creation to the advance).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ce import git
from ce.config import ValidateConfig
from ce.core.events import LaneStep, Listener, MergeStep
from ce.core.names import merge_subject
from ce.run import advance, worktree_env
from ce.run.record import LevelResult
from ce.run.state import Journal
from ce.run.validate import ValidationTarget, detect_test_command, first_failure, run_levels

_MAX_RACES = 20  # the target moved under us (the user committed): recompute and try again


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
        self.validated_trees: set[str] = set()
        self.refs = f"refs/ce/{_ref_part(batch_id)}"
        self._recovered = False

    def recover(self) -> None:
        """Once per run, before anything else touches the checkout holding the target: a
        killed run's half-done fast-forward there is finished, or its index lock dropped."""
        if not self._recovered:
            advance.recover(self.checkout, self.ref)
            self._recovered = True

    def merge(self, req: MergeRequest) -> MergeResult:
        self.validated_trees.add(self.checkout.rev_parse(f"{req.head}^{{tree}}"))
        self.checkout.set_ref(self._held("head", req.prp_id), req.head, "ce: validated head")
        self.recover()
        for _ in range(_MAX_RACES):
            old = self.checkout.rev_parse(self.ref)
            existing = self.find_merge(req.prp_id, req.head) if self.resuming else None
            if existing is not None:
                self.release(req.prp_id)
                return MergeResult(outcome=MergeOutcome.MERGED, commit=existing, tip=old)
            result = self._attempt(req, old)
            if result is not None:
                return result
        return MergeResult(
            outcome=MergeOutcome.BLOCKED,
            message=f"{self.target} kept moving while merging {req.prp_id}; try --resume",
        )

    def release(self, prp_id: str) -> None:
        """Drop the refs that hold this PRP's objects: once it is merged (the target holds
        them) or removed from the batch."""
        self.checkout.delete_refs([self._held(kind, prp_id) for kind in ("head", "merge")])

    def release_all(self) -> None:
        """Drop every ref this batch's lane holds (`ce cleanup`, the end of a batch)."""
        self.checkout.delete_refs(list(self.checkout.ref_tips([f"{self.refs}/"])))

    def _held(self, kind: str, prp_id: str) -> str:
        return f"{self.refs}/{kind}/{_ref_part(prp_id)}"

    def find_merge(self, prp_id: str, head: str) -> str | None:
        """The merge commit of this PRP on the target, if an earlier attempt or run made it."""
        if not self.checkout.is_ancestor(head, self.ref):
            return None
        return self.checkout.find_first_parent_commit(self.ref, merge_subject(prp_id, ""))

    def _attempt(self, req: MergeRequest, old: str) -> MergeResult | None:
        self.emit(MergeStep(prp=req.prp_id, step=LaneStep.MERGE_TREE, detail=f"onto {old[:10]}"))
        merged = self.checkout.merge_tree(old, req.head)
        if merged.tree is None:
            self.emit(
                MergeStep(
                    prp=req.prp_id, step=LaneStep.CONFLICT, detail=", ".join(merged.conflicts)
                )
            )
            return MergeResult(outcome=MergeOutcome.CONFLICT, conflicts=merged.conflicts)
        commit = self.checkout.commit_tree(
            merged.tree, [old, req.head], merge_subject(req.prp_id, req.title)
        )
        self.checkout.set_ref(self._held("merge", req.prp_id), commit, "ce: merge to validate")
        validation = self._validate(req, merged.tree, old, commit)
        if first_failure(validation) is not None:
            return MergeResult(outcome=MergeOutcome.INVALID, commit=commit, validation=validation)
        tip = commit
        self.journal.intent("advance", prp=req.prp_id, ref=self.ref, old=old, new=tip, merge=commit)
        self.emit(
            MergeStep(prp=req.prp_id, step=LaneStep.ADVANCE, detail=f"{self.target} → {tip[:10]}")
        )
        advanced = advance.advance(self.checkout, self.ref, old, tip)
        if advanced.moved is None:
            return None
        if not advanced.moved:
            return MergeResult(
                outcome=MergeOutcome.BLOCKED,
                commit=commit,
                message=f"{req.prp_id} is validated and ready, but {self.target} was not "
                f"advanced: {advanced.reason} Then run again with --resume.",
            )
        self.journal.fact("merged", prp=req.prp_id, merge=commit, tip=tip)
        self.release(req.prp_id)
        self.emit(MergeStep(prp=req.prp_id, step=LaneStep.MERGED, detail=commit[:10]))
        return MergeResult(
            outcome=MergeOutcome.MERGED, commit=commit, tip=tip, onto=old, validation=validation
        )

    def _validate(
        self, req: MergeRequest, tree: str, old: str, commit: str
    ) -> dict[str, LevelResult]:
        if tree in self.validated_trees or not self._has_tree_checks():
            return {}
        self.emit(MergeStep(prp=req.prp_id, step=LaneStep.VALIDATE, detail=f"tree {tree[:10]}"))
        self._checkout_integration(commit)
        target = ValidationTarget(
            worktree=self.integration, base=old, head=commit, branch_checks=False, log=req.log
        )
        with worktree_env.committed_only_in_lane(self.integration):
            results = run_levels(target, self.config, (2, 3, 4), req.validation_env)
        if first_failure(results) is None:
            self.validated_trees.add(tree)
        return results

    def _has_tree_checks(self) -> bool:
        """Whether validating a merged tree can find anything (else skip the checkout)."""
        config = self.config
        if config.level2 is None or config.level2.strip() or config.level4.strip():
            return True
        if config.level3 is None:
            return detect_test_command(self.checkout.path) is not None
        return bool(config.level3.strip())

    def _checkout_integration(self, commit: str) -> None:
        checkout_integration(self.checkout, self.integration, commit, self.on_integration_created)

    def commit_file(self, path: str, text: str, message: str) -> bool:
        """Commit one file's new content straight onto the target (the `.gitignore` entry)."""
        for _ in range(_MAX_RACES):
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
