"""Worktrees and the branches they hold, serialized by a lock file in the git common dir:
parallel `git worktree add` races on `.git/config`, on packed refs and on the admin dirs
under `.git/worktrees`. The lock covers that bookkeeping only: a new worktree's files are
checked out after it is released, each worktree writing only its own index and files."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce.git._run import NO_HOOKS, GitError
from ce.git.refs import HEADS, RefCommands, require_branch_name

LOCK_NAME = "ce-worktree.lock"
# What `worktree add` says of the commit it checked out, unabbreviated with core.abbrev=no.
_CHECKED_OUT = re.compile(r"^HEAD is now at ([0-9a-f]{40}|[0-9a-f]{64}) ", re.MULTILINE)


@dataclass(frozen=True, kw_only=True)
class WorktreeInfo:
    path: Path
    head: str | None  # None for a bare repository
    branch: str | None  # the full ref, as git reports it (`refs/heads/main`); None when detached
    detached: bool
    locked: bool
    prunable: bool


class WorktreeCommands(RefCommands):
    """The git commands that add and remove worktrees and branches, under the worktree lock."""

    @contextlib.contextmanager
    def worktree_lock(self) -> Iterator[None]:
        """Hold the repository's worktree lock (threads and processes alike)."""
        with (self.common_dir() / LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def worktrees(self) -> list[WorktreeInfo]:
        # Under the lock: a concurrent `worktree add` leaves half-written admin dirs that make
        # `worktree list` fail ("failed to read .git/worktrees/x/commondir").
        with self.worktree_lock():
            output = self.git("worktree", "list", "--porcelain", "-z").stdout
        return [_worktree_info(record) for record in output.split("\0\0") if record.strip("\0")]

    def add_worktree(
        self,
        path: Path,
        branch: str,
        base: str,
        *,
        sparse: Sequence[str] | None = None,
        branch_absent: bool = False,
    ) -> str:
        """A new worktree at `path` on a new branch `branch` started at `base` (any revision:
        `refs/heads/main`); with `sparse`, only those directories (and the root's files) are
        checked out. Returns the commit it started at.

        On failure the branch it created and the directory it made are removed. With
        `branch_absent` the caller has just seen that no such branch exists (one
        `for-each-ref` for a whole batch), so it is not looked up again here.
        """
        require_branch_name(branch)
        target = self._absolute(path)
        undo = self._undo_failed_add(target, branch, branch_absent=branch_absent)
        with undo:
            with self.worktree_lock():
                self.git(
                    *NO_HOOKS, "worktree", "add", "--no-track", "--no-checkout", "-b", branch,
                    "--", str(target), base,
                )  # fmt: skip
                if sparse is not None:
                    type(self)(target)._check_out_sparse(sparse)
            if sparse is None:  # what `worktree add` itself runs to check out, unlocked here
                output = type(self)(target).git(
                    *NO_HOOKS, "-c", "core.abbrev=no", "reset", "--hard",
                    "--no-recurse-submodules",
                ).stdout  # fmt: skip
                said = _CHECKED_OUT.search(output)
                if said is not None:
                    return said.group(1)
        return self.rev_parse(HEADS + branch)

    def add_worktree_for_branch(
        self, path: Path, branch: str, *, sparse: Sequence[str] | None = None
    ) -> None:
        """A new worktree at `path` on the existing branch `branch` (resuming a PRP)."""
        require_branch_name(branch)
        target = self._absolute(path)
        no_checkout = [] if sparse is None else ["--no-checkout"]
        with self._undo_failed_add(target, None), self.worktree_lock():
            self.git(*NO_HOOKS, "worktree", "add", *no_checkout, "--", str(target), branch)
            if sparse is not None:
                type(self)(target)._check_out_sparse(sparse)

    def _check_out_sparse(self, directories: Sequence[str]) -> None:
        """Check out only `directories` (cone mode) in this new `--no-checkout` worktree.

        Under the worktree lock: the first `sparse-checkout` sets `extensions.worktreeConfig`
        in the shared config. Sparse checking out is then switched off again in this worktree:
        the files left out keep their skip-worktree bit (absent, not deleted), and new files
        anywhere can still be added, where an active sparse definition makes `git add` refuse
        paths outside it (and an agent's `git add -A` with them).
        """
        listed = "".join(f"{directory}\n" for directory in directories)
        self.git("sparse-checkout", "set", "--cone", "--stdin", input=listed)
        self.git(*NO_HOOKS, "read-tree", "-mu", "HEAD")
        self.git("config", "--worktree", "core.sparseCheckout", "false")

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        """A new worktree at `path` with HEAD detached at `commit` (the integration worktree)."""
        target = self._absolute(path)
        with self._undo_failed_add(target, None), self.worktree_lock():
            self.git(*NO_HOOKS, "worktree", "add", "--detach", "--", str(target), commit)

    def remove_worktree(self, path: Path, force: bool = False) -> None:
        """Remove a worktree; `force` also drops its uncommitted changes."""
        forced = ["--force"] if force else []
        with self.worktree_lock():
            self.git("worktree", "remove", *forced, "--", str(self._absolute(path)))

    def prune_worktrees(self) -> None:
        """Forget worktrees whose directories are gone."""
        with self.worktree_lock():
            self.git("worktree", "prune")

    def maintain(self) -> None:
        """The repository's automatic maintenance, once (what the batch's commits did not start:
        see `git_env`), under the user's own settings and hooks (`gc.auto`, `pre-auto-gc`)."""
        self.git("maintenance", "run", "--auto", "--quiet", check=False)

    def rename_branch(self, old: str, new: str) -> None:
        require_branch_name(new)
        with self.worktree_lock():
            self.git("branch", "--move", "--", old, new)

    def delete_branches(self, names: Sequence[str]) -> None:
        """Delete local branches in one call; missing ones are fine, a checked-out one is not."""
        if not names:
            return
        with self.worktree_lock():
            completed = self.git("branch", "--delete", "--force", "--", *names, check=False)
        if completed.returncode == 0:
            return
        left = self.ref_tips([HEADS + name for name in names])
        if any(HEADS + name in left for name in names):
            raise GitError.from_completed(completed)

    @contextlib.contextmanager
    def _undo_failed_add(
        self, path: Path, new_branch: str | None, *, branch_absent: bool = False
    ) -> Iterator[None]:
        """Remove what a failed `worktree add` (or the checkout after it) left: the directory,
        its registration, and the branch it made. Entered without the worktree lock."""
        had_path = path.exists()
        had_branch = new_branch is None or (not branch_absent and self.branch_exists(new_branch))
        try:
            yield
        except BaseException as exc:
            # A branch made since the caller looked is someone else's: `-b` refused it.
            refused = f"a branch named '{new_branch}' already exists"
            theirs = branch_absent and isinstance(exc, GitError) and refused in exc.stderr
            with self.worktree_lock():
                if not had_path:
                    shutil.rmtree(path, ignore_errors=True)
                    self.git("worktree", "prune", check=False)  # registered, then failed
                if not had_branch and not theirs:
                    self.git("branch", "--delete", "--force", "--", str(new_branch), check=False)
            raise


def _worktree_info(record: str) -> WorktreeInfo:
    """One record of `git worktree list --porcelain -z`."""
    fields = [field for field in record.split("\0") if field]
    attrs = {key: value for key, _, value in (field.partition(" ") for field in fields)}
    return WorktreeInfo(
        path=Path(attrs["worktree"]),
        head=attrs.get("HEAD"),
        branch=attrs.get("branch"),
        detached="detached" in attrs,
        locked="locked" in attrs,
        prunable="prunable" in attrs,
    )
