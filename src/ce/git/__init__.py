"""The one git wrapper: every git command `ce` runs goes through here (and `proc.run`).

Every git process starts in `_run.run_git`, with the inherited `GIT_*` variables removed and a
time limit. `Repo` is a checkout and the commands ce runs in it, composed of one part per
concern: refs and remotes (`refs`), history and commits (`commits`), files, blobs and trees
(`files`), merging without a checkout (`merging`), and worktrees and branches under the
worktree lock (`worktrees`).
"""

from __future__ import annotations

from ce.git import fence
from ce.git._run import (
    DEFAULT_TIMEOUT,
    MIN_GIT,
    NO_HOOKS,
    DirectoryGone,
    GitError,
    git_env,
    require_git,
    timeout_seconds,
)
from ce.git.commits import Commit
from ce.git.merging import MergeTreeResult
from ce.git.refs import check_ref_format, require_branch_name
from ce.git.repo import Repo, init_repo
from ce.git.worktrees import LOCK_NAME, WorktreeInfo

__all__ = [
    "DEFAULT_TIMEOUT",
    "LOCK_NAME",
    "MIN_GIT",
    "NO_HOOKS",
    "Commit",
    "DirectoryGone",
    "GitError",
    "MergeTreeResult",
    "Repo",
    "WorktreeInfo",
    "check_ref_format",
    "fence",
    "git_env",
    "init_repo",
    "require_branch_name",
    "require_git",
    "timeout_seconds",
]
