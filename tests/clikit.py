"""Helpers for the CLI tests: run `ce` in-process the way a user would, and inspect the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchkit import git
from ce.cli import run


@dataclass(frozen=True, kw_only=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def ce(
    cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Result:
    """`ce ARGS` from `cwd` through the real entry point; stdout and stderr kept apart."""
    capsys.readouterr()  # drop what earlier steps printed
    monkeypatch.chdir(cwd)
    code = run(list(args))
    out = capsys.readouterr()
    return Result(code=code, out=out.out, err=out.err)


def ce_process(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m ce ARGS` in a child process, as a shell would run it."""
    return subprocess.run(
        [sys.executable, "-m", "ce", *args],
        cwd=cwd,
        env=CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# Without the GIT_* variables a caller (a git hook, say) may have set: the child's git must
# find the test repository from its cwd.
CHILD_ENV = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


def worktrees(repo: Path) -> int:
    return git(repo, "worktree", "list", "--porcelain").count("worktree ")


def merges(repo: Path, ref: str = "main") -> list[str]:
    subjects = git(repo, "log", "--first-parent", "--format=%s", ref).splitlines()[::-1]
    return [s for s in subjects if s.startswith("Merge ")]


def assert_untouched(repo: Path, head: str) -> None:
    """Nothing was created: no state directory, no branch, no worktree, the target unmoved."""
    assert not (repo / ".ce" / "tmp").exists()
    assert branches(repo) == ["main"]
    assert worktrees(repo) == 1
    assert sorted(p.name for p in repo.parent.iterdir()) == [repo.name]
    assert git(repo, "rev-parse", "main") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
