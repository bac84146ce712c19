"""The repository `ce` runs in, found from the current directory."""

from __future__ import annotations

from pathlib import Path

from ce import git
from ce.core.errors import CeError


def open_repository(cwd: Path) -> tuple[git.Repo, Path]:
    git.require_git()
    repo = git.Repo(cwd)
    try:
        root = Path(repo.toplevel())
    except git.GitError:
        raise CeError(
            f"{cwd} is not inside a git repository. Run ce from the repository whose PRPs "
            "you want to execute (`git init` first for a new project)."
        ) from None
    return git.Repo(root), root
