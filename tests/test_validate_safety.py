"""Validation judges what is committed and never hangs on what it scans (issue 13: 4, 8)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from ce import git
from ce.config import ValidateConfig
from ce.run.record import LevelResult
from ce.run.validate import ValidationTarget, level_key, run_levels

_PY = sys.executable


def _work(repo: Path, files: dict[str, str], links: dict[str, str] | None = None) -> str:
    """Commit `files` (and symlinks `links`: name → target) on main; the new HEAD."""
    r = git.Repo(repo)
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    for name, target in (links or {}).items():
        (repo / name).symlink_to(target)
    head = r.commit_all("PRP-1.1: Phase 1 - work")
    assert head is not None
    return head


def _levels(repo: Path, base: str, head: str, config: ValidateConfig) -> dict[str, LevelResult]:
    target = ValidationTarget(worktree=repo, base=base, head=head, branch_checks=False)
    return run_levels(target, config, (1, 2, 3, 4))


def test_a_check_that_changes_tracked_files_fails_naming_them(repo: Path) -> None:
    """Case 4 / I3: `ruff --fix`-style checks pass the tree they produced, not the committed one."""
    base = git.Repo(repo).rev_parse("HEAD")
    head = _work(repo, {"a.py": "x=1\n", "b.py": "y=2\n", "c.py": "z=3\n"})
    fix = f"{_PY} -c \"[open(n, 'w').write('fixed = 1\\n') for n in ('b.py', 'a.py')]\""
    results = _levels(repo, base, head, ValidateConfig(level2=fix, level3="", level4=""))
    assert results[level_key(2)].passed is False
    assert results[level_key(2)].errors[0] == "changed tracked files: a.py, b.py"
    assert level_key(3) not in results


def test_a_check_that_writes_only_untracked_or_ignored_files_passes(repo: Path) -> None:
    base = git.Repo(repo).rev_parse("HEAD")
    head = _work(repo, {".gitignore": "cache/\n", "a.py": "x = 1\n"})
    make = f"{_PY} -c \"import os; os.makedirs('cache'); open('cache/x', 'w'); open('new', 'w')\""
    results = _levels(repo, base, head, ValidateConfig(level2="", level3=make, level4=""))
    assert all(result.passed for result in results.values()), results


def test_changes_made_before_the_checks_are_not_theirs(repo: Path) -> None:
    """`ce validate` by hand in a checkout with uncommitted work: only what a check changed."""
    base = git.Repo(repo).rev_parse("HEAD")
    head = _work(repo, {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    (repo / "a.py").write_text("x = 2\n", encoding="utf-8")
    touch_b = f"{_PY} -c \"open('b.py', 'a').write('# ok\\n')\""
    results = _levels(repo, base, head, ValidateConfig(level2="", level3=touch_b, level4=""))
    assert results[level_key(3)].errors[0] == "changed tracked files: b.py"


def test_a_committed_symlink_to_a_fifo_does_not_hang_the_scans(tmp_path: Path, repo: Path) -> None:
    """Case 8 / I6: the conflict-marker scan and the L2 compile never open a FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    base = git.Repo(repo).rev_parse("HEAD")
    head = _work(repo, {"ok.py": "x = 1\n"}, {"pipe.py": str(fifo), "pipe.txt": str(fifo)})
    assert _quickly(lambda: _levels(repo, base, head, ValidateConfig(level3="", level4="")))


def test_a_committed_symlink_to_dev_zero_is_not_read(repo: Path) -> None:
    """Case 8 / I6: `/dev/zero` behind a symlink is never read (it would grow without end)."""
    base = git.Repo(repo).rev_parse("HEAD")
    links = {"zero.py": "/dev/zero", "zero.txt": "/dev/zero", "package.json": "/dev/zero"}
    head = _work(repo, {"ok.py": "x = 1\n"}, links)
    assert _quickly(lambda: _levels(repo, base, head, ValidateConfig(level3=None, level4="")))


def test_conflict_markers_are_still_found_in_regular_files(repo: Path) -> None:
    base = git.Repo(repo).rev_parse("HEAD")
    head = _work(repo, {"m.txt": "<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n"})
    results = _levels(repo, base, head, ValidateConfig(level3="", level4=""))
    assert results[level_key(1)].errors == ["conflict markers in m.txt"]


def _quickly(work: object, seconds: float = 20.0) -> bool:
    """Whether `work()` finished, all levels passing, within `seconds` (run in a thread, so
    that a hang fails the test instead of blocking the suite)."""
    assert callable(work)
    passed: list[bool] = []
    thread = threading.Thread(
        target=lambda: passed.append(all(r.passed for r in work().values())), daemon=True
    )
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still scanning after {time.monotonic() - started:.0f}s"
    return passed == [True]
