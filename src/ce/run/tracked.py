"""PRP files git does not track: a run refuses them, `ce lint` reports them."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from pathlib import Path

from ce import git
from ce.prp.model import Prp
from ce.run.worktree_env import relpaths


def untracked_prps(repo: git.Repo, root: Path, prps: Sequence[Prp]) -> list[str]:
    """The PRP files (repo-relative, sorted) git does not track; files outside the repository
    aside."""
    paths = sorted(path for path in relpaths(root, prps) if path is not None)
    # Asked per directory, not per file: git matches every pathspec against every index entry,
    # 1.7 s of CPU for 10,000 PRP files named one by one (a file at the top level is named).
    tracked = repo.tracked(sorted({posixpath.dirname(path) or path for path in paths}))
    return [path for path in paths if path not in tracked]


def untracked_message(untracked: Sequence[str], target: str) -> str:
    listed = "\n".join(f"  {path}" for path in untracked)
    quoted = " ".join(shlex.quote(path) for path in untracked)
    return (
        f"These PRP files are not tracked by git:\n{listed}\n"
        f"ce marks a PRP completed in its file as part of its merge into {target}; an untracked "
        "file is not part of it, so its `status: completed` never lands and a later run starts "
        "it again. Commit them first: "
        f'`git add {quoted} && git commit -m "Add PRPs"`.'
    )
