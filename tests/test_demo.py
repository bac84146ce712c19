"""`ce demo`: a throwaway repository and a real 5-PRP, 3-stage batch, as a new user runs it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchkit import git
from clikit import CHILD_ENV, branches, ce, merges, worktrees


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`ce demo --dir D` in a child process, for a user whose git signs every commit."""
    base = tmp_path_factory.mktemp("demo")
    home = base / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[commit]\n\tgpgsign = true\n[user]\n\tsigningkey = NONE\n")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ce", "demo", "--dir", str(base / "demos")],
        cwd=base,
        env={**CHILD_ENV, "HOME": str(home), "XDG_CONFIG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started


def printed_path(text: str, pattern: str) -> Path:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{pattern!r} not in:\n{text}"
    return Path(found[1])


def test_demo_finishes_quickly_with_every_prp_merged(
    demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    done, elapsed = demo

    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 40, f"the demo took {elapsed:.0f}s"
    assert "Batch 1: COMPLETED" in done.stdout
    assert "Total PRPs: 5  Completed: 5" in done.stdout
    assert "Traceback" not in done.stderr


def test_demo_prints_paths_that_exist(demo: tuple[subprocess.CompletedProcess[str], float]) -> None:
    done, _ = demo

    root = printed_path(done.stderr, r"^Demo repository: (\S+)$")
    assert printed_path(done.stderr, r"^  cd (\S+) && git log") == root
    assert printed_path(done.stderr, r"^Remove it when done: rm -rf (\S+)$") == root.parent
    report = printed_path(done.stdout, r"Read the report: (\S+)$")
    assert root.is_dir() and (root / ".git").is_dir()
    assert report.is_file() and report.is_relative_to(root)


def test_demo_repository_holds_the_merged_batch_and_its_tests_pass(
    demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    root = printed_path(demo[0].stderr, r"^Demo repository: (\S+)$")

    # Plan order: stage 1; stage 2; stage 3 (Number formatting moved there: shares a file).
    assert merges(root) == [
        "Merge PRP-1.1.1: Core arithmetic",
        "Merge PRP-1.2.1: Statistics",
        "Merge PRP-1.2.3: Parse numbers",
        "Merge PRP-1.2.2: Number formatting",
        "Merge PRP-1.3.1: Report",
    ]
    assert branches(root) == ["main"] and worktrees(root) == 1
    assert git(root, "status", "--porcelain") == ""
    tests = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tests.returncode == 0, tests.stderr
    assert re.search(r"Ran (\d+) tests", tests.stderr)


def test_demo_plan_has_three_stages_and_a_serialized_conflict(
    demo: tuple[subprocess.CompletedProcess[str], float],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = printed_path(demo[0].stderr, r"^Demo repository: (\S+)$")

    result = ce(root, monkeypatch, capsys, "batch-exe", "--batch", "1", "--dry-run", "--json")

    assert result.code == 0
    plan = json.loads(result.out)
    # Every PRP is done after the demo: none is placed in a stage to run, each keeps its own.
    assert plan["stages"] == {}
    assert len(plan["done"]) == 5
    assert len({p["stage"] for p in plan["prps"].values()}) == 3
    (move,) = plan["moves"]
    shared = [f for f, ids in plan["file_conflicts"].items() if move["prp"] in ids]
    assert shared, plan["file_conflicts"]
    assert all(p["status"] == "completed" for p in plan["prps"].values())


def test_demo_next_steps_work_as_printed(
    demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    """Run from this checkout's environment, the demo prints `uv run --project <checkout> ce`:
    `ce` is not on the user's PATH and plain `uv run ce` fails outside the project."""
    done, _ = demo
    root = printed_path(done.stderr, r"^Demo repository: (\S+)$")
    step = re.search(r"^  (.+) +# the plan it followed$", done.stderr, re.MULTILINE)
    assert step, done.stderr
    command = shlex.split(step[1])
    assert command[:4] == ["uv", "run", "--project", str(Path(__file__).parent.parent)]

    again = subprocess.run(
        command, cwd=root, env=CHILD_ENV, capture_output=True, text=True, timeout=120, check=False
    )

    assert again.returncode == 0, again.stdout + again.stderr
    assert "PRP-1.1.1" in again.stdout
    assert not (root / ".venv").exists() and not (root / "uv.lock").exists()
