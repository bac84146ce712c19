"""Shared fixtures: real git repositories in temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from ce.git import init_repo

IDENTITY = ("ce tests", "tests@example.invalid")


def make_repo(path: Path) -> Path:
    """A repository at `path` on `main` with a repo-local identity and one commit (README.md)."""
    repo = init_repo(path, branch="main", user=IDENTITY)
    # A developer's global config must not sign (and prompt) or hook into test commits.
    repo.git("config", "commit.gpgsign", "false")
    repo.git("config", "tag.gpgsign", "false")
    repo.git("config", "core.hooksPath", "/dev/null")
    (path / "README.md").write_text("# test repo\n", encoding="utf-8")
    repo.commit_all("Initial commit")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository (see `make_repo`) at `tmp_path / "repo"`; its parent holds worktrees."""
    return make_repo(tmp_path / "repo")
