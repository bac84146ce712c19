"""The real agent CLIs the tests run, installed at their pinned versions under tests/.tools.

`python tests/agent_tools.py install` (called by .ci/run) installs them; tests that need one
skip, saying how to install it, when it is not there. The pinned versions are the presets' own,
so the README, preflight's advice and the tests cannot disagree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ce.agents import claude, codex, gemini

TOOLS = Path(__file__).resolve().parent / ".tools"
NPM_PACKAGES = {"claude": claude.PACKAGE, "codex": codex.PACKAGE, "gemini": gemini.PACKAGE}


def npm_binary(name: str) -> Path | None:
    path = TOOLS / "node_modules" / ".bin" / name
    return path if os.access(path, os.X_OK) else None


def require_npm_binary(name: str) -> Path:
    """The installed CLI, or skip the test with the command that installs it."""
    found = npm_binary(name)
    if found is None:
        package = NPM_PACKAGES[name]
        pytest.skip(
            f"{package.agent} {package.pinned} is not installed under tests/.tools: "
            "run `uv run python tests/agent_tools.py install` (needs npm)"
        )
    return found


def install() -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: the agent CLI tests will be skipped", file=sys.stderr)
        return 0
    TOOLS.mkdir(exist_ok=True)
    specs = [f"{p.package}@{p.pinned}" for p in NPM_PACKAGES.values()]
    quiet = ("--no-audit", "--no-fund", "--no-save", "--loglevel=error")
    done = subprocess.run([npm, "install", "--prefix", str(TOOLS), *quiet, *specs], check=False)
    return done.returncode


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python tests/agent_tools.py install")
    sys.exit(install())
