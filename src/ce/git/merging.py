"""Merging without a checkout (`merge-tree`), and moving a checkout to a merged commit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ce.git._run import NO_HOOKS, GitError, run_git
from ce.git.base import RepoBase
from ce.proc import Completed

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class MergeTreeResult:
    """A merge computed without a checkout: the tree when clean, else the conflicted paths."""

    tree: str | None
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.tree is not None


class MergeCommands(RepoBase):
    """The git commands that merge, and that bring a checkout to the result."""

    def merge_tree(self, ours: str, theirs: str) -> MergeTreeResult:
        """Merge two commits in the object store only; the working tree is not touched."""
        completed = self.git(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
            check=False,
        )  # fmt: skip
        tree, *paths = completed.stdout.split("\0")
        # Exit 1 means "conflict" only with a tree: an unknown commit also exits 1.
        if completed.returncode not in (0, 1) or not _OID.fullmatch(tree):
            raise GitError.from_completed(completed)
        if completed.returncode == 0:
            return MergeTreeResult(tree=tree, conflicts=())
        return MergeTreeResult(tree=None, conflicts=tuple(dict.fromkeys(p for p in paths if p)))

    def two_tree_checkout(
        self, old: str, new: str, index_file: Path, *, reset: bool = False
    ) -> Completed:
        """`read-tree -m -u old new` on `index_file`: the files here go from `old` to `new`
        like a checkout, refusing (and changing nothing) when a local change or an untracked
        file is in the way (`reset`: overwriting them). No hook runs."""
        mode = ["--reset"] if reset else ["-m"]
        env = {"GIT_INDEX_FILE": str(index_file)}
        argv = [*NO_HOOKS, "read-tree", *mode, "-u", old, new]
        done = run_git(argv, cwd=self.path, check=False, extra_env=env)
        if done.returncode != 0 and "not uptodate" in done.stderr:
            # Perhaps only stat data is stale (a file touched, a copied repository): git takes
            # such a file for changed until the index is refreshed. Refreshed, a file really
            # changed is refused again; nothing else is written. Off the normal path.
            run_git(["update-index", "-q", "--refresh"], cwd=self.path, check=False, extra_env=env)
            done = run_git(argv, cwd=self.path, check=False, extra_env=env)
        return done

    def merge_ff_only(self, rev: str) -> None:
        """Fast-forward this checkout to `rev`; git refuses if local changes are in the way."""
        self.git("merge", "--ff-only", "--quiet", "--end-of-options", rev)

    def force_checkout_detached(self, commit: str) -> None:
        """Make this (integration) worktree exactly `commit`: local changes and untracked
        files are thrown away; ignored files (caches, virtualenvs) are kept."""
        self.git(*NO_HOOKS, "checkout", "--quiet", "--force", "--detach", commit)
        self.git("clean", "--quiet", "--force", "-d")
