"""What validation reads of a worktree without running anything: a regular file's bytes (never
through a symlink, a FIFO or a device) and the test command a repository clearly uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

SCAN_CAP = 8 * 1024 * 1024  # what a file scan reads of one file at most
_CONFIG_CAP = 1024 * 1024  # package.json, Makefile, pyproject.toml read to detect the tests


def read_regular(path: Path, cap: int = SCAN_CAP) -> bytes | None:
    """The first `cap` bytes of `path` if it is a regular file; None for a symlink (never
    followed), a FIFO, a device, a directory or a file that cannot be read. Never blocks."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the lstat
            return None
        return handle.read(cap)


def detect_test_command(root: Path) -> Sequence[str] | None:
    """pytest, npm test or make test, when the repository clearly uses one of them."""
    package = _read_config(root / "package.json")
    if package is not None:
        try:
            scripts = json.loads(package).get("scripts", {})
        except (ValueError, AttributeError):
            scripts = {}
        if isinstance(scripts, dict) and "test" in scripts:
            return ["npm", "test", "--silent"]
    if _uses_pytest(root):
        if (root / "uv.lock").is_file() and shutil.which("uv"):
            return ["uv", "run", "pytest", "-q"]
        return ["python3", "-m", "pytest", "-q"]
    makefile = _read_config(root / "Makefile")
    if makefile is not None and re.search(r"^test:", makefile, re.M):
        return ["make", "test"]
    return None


def _read_config(path: Path) -> str | None:
    data = read_regular(path, _CONFIG_CAP)
    return None if data is None else data.decode("utf-8", "replace")


def _uses_pytest(root: Path) -> bool:
    if (root / "pytest.ini").is_file() or (root / "conftest.py").is_file():
        return True
    for name, marker in (("pyproject.toml", "[tool.pytest"), ("setup.cfg", "[tool:pytest]")):
        text = _read_config(root / name)
        if text is not None and marker in text:
            return True
    return False
