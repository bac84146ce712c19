"""The real agent CLIs the tests run, installed at their pinned versions under tests/.tools.

`python tests/agent_tools.py install` (called by .ci/run) installs them; tests that need one
skip, saying how to install it, when it is not there. The pinned versions are the presets' own,
so the README, preflight's advice and the tests cannot disagree.

Aider is a Python program: it gets its own environment, tests/.tools/aider (with uv, else
`python -m venv` and pip), never the project's. It is reinstalled only when its version differs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ce.agents import aider, claude, codex, gemini

TOOLS = Path(__file__).resolve().parent / ".tools"
NPM_PACKAGES = {"claude": claude.PACKAGE, "codex": codex.PACKAGE, "gemini": gemini.PACKAGE}
AIDER_ENV = TOOLS / "aider"
INSTALL_HINT = "run `uv run python tests/agent_tools.py install`"


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
            f"{INSTALL_HINT} (needs npm)"
        )
    return found


def aider_binary() -> Path | None:
    """The pinned aider in its own environment, if installed there."""
    path = AIDER_ENV / "bin" / "aider"
    return path if os.access(path, os.X_OK) and _aider_installed() else None


def require_aider() -> Path:
    found = aider_binary()
    if found is None:
        package = aider.PACKAGE
        pytest.skip(
            f"{package.agent} {package.pinned} is not installed under tests/.tools/aider: "
            f"{INSTALL_HINT}"
        )
    return found


def _aider_installed() -> bool:
    # The package's metadata names its version: no need to start aider (seconds) to ask it.
    wanted = f"{aider.PACKAGE.package.replace('-', '_')}-{aider.PACKAGE.pinned}.dist-info"
    return any(AIDER_ENV.glob(f"lib/python3*/site-packages/{wanted}"))


def install() -> int:
    codes = [install_npm(), install_aider()]  # one failing does not stop the other
    return next((code for code in codes if code), 0)


def install_aider() -> int:
    """aider-chat at the preset's pinned version, in tests/.tools/aider, unless already there."""
    if _aider_installed():
        return 0
    spec = f"{aider.PACKAGE.package}=={aider.PACKAGE.pinned}"
    shutil.rmtree(AIDER_ENV, ignore_errors=True)  # a partial or other version
    python = str(AIDER_ENV / "bin" / "python")
    uv = shutil.which("uv")
    if uv is not None:  # several times faster than pip; compiled now, not in the first test
        steps = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(AIDER_ENV)],
            [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, spec],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(AIDER_ENV)],
            [python, "-m", "pip", "install", "--quiet", spec],
        ]
    for argv in steps:
        code = subprocess.run(argv, check=False).returncode
        if code != 0:
            return code
    return 0


def install_npm() -> int:
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
