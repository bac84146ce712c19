"""`ce demo`: a throwaway repository with a small real batch, run with the script executor."""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from ce import git

FILES = Path(__file__).parent / "files"
BATCH_ID = "1"


def _config(python: str) -> str:
    test = shlex.join([python, "-m", "unittest", "discover", "-s", "tests", "-t", "."])
    return f"""\
# ce configuration for the demo repository
executor = "script"
max_parallel = 4

[validate]
level3 = {test!r}

[monitor]
poll_seconds = 1
"""


def make_demo_repo(parent: Path | None = None) -> Path:
    """A fresh repository with batch 1 committed on `main`; returns its path."""
    base = Path(tempfile.mkdtemp(prefix="ce-demo-", dir=parent))
    root = base / "calc-demo"
    shutil.copytree(FILES, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(_config(sys.executable), encoding="utf-8")
    (root / ".gitignore").write_text("__pycache__/\n.ce/tmp/\n", encoding="utf-8")
    git.init_repo(root, branch="main", user=("ce demo", "demo@example.invalid"))
    repo = git.Repo(root)
    # A throwaway repository: the user's global signing setup must not prompt or fail here.
    repo.git("config", "commit.gpgsign", "false")
    repo.commit_all("Initial commit: calc package and batch 1 PRPs")
    return root
