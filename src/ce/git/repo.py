"""`Repo`: a git checkout and every git command `ce` runs in it, one part per concern."""

from __future__ import annotations

from pathlib import Path

from ce.git.bundles import BundleCommands
from ce.git.commits import CommitCommands
from ce.git.files import FileCommands
from ce.git.merging import MergeCommands
from ce.git.worktrees import WorktreeCommands


class Repo(WorktreeCommands, CommitCommands, FileCommands, MergeCommands, BundleCommands):
    """A git checkout (the user's, or a worktree) and the git commands `ce` runs in it."""


def init_repo(path: Path, *, branch: str = "main", user: tuple[str, str] | None = None) -> Repo:
    """A new repository at `path` on `branch`; `user` = (name, email) as repo-local identity."""
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo(path)
    repo.git("init", "--quiet", f"--initial-branch={branch}")
    if user is not None:
        repo.git("config", "user.name", user[0])
        repo.git("config", "user.email", user[1])
    return repo
