"""Power cut (issue 13, case 13; I8): ce, its agents and git killed together, then --resume.

A power cut leaves what no single `kill -9` of ce does: a git process killed mid-command. Its
`index.lock`, a worktree `git worktree add` left "locked: initializing", one `git worktree
remove` left half-removed. Resume must repair what is ce's own and go on.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchkit import Spec, assert_merged_once, make_batch_repo, write

CONFIG = """\
executor = "script"
max_parallel = 3
[monitor]
poll_seconds = 0.1
grace_seconds = 0.3
"""

SPECS = [
    Spec(
        id="PRP-9.1.1",
        title="Alpha",
        phases=[[write("a.txt", "a"), "sleep 0.05"], [write("a2.txt", "a2")]],
        files=["a.txt", "a2.txt"],
    ),
    Spec(
        id="PRP-9.1.2",
        title="Bravo",
        phases=[[write("b.txt", "b"), "sleep 0.05"], [write("b2.txt", "b2")]],
        files=["b.txt", "b2.txt"],
    ),
    Spec(
        id="PRP-9.1.3",
        title="Charlie",
        phases=[[write("c.txt", "c")]],
        files=["c.txt"],
    ),
    Spec(
        id="PRP-9.2.1",
        title="Delta",
        deps=["PRP-9.1.1"],
        phases=[[write("d.txt", "d"), "sleep 0.05"]],
        files=["d.txt"],
    ),
]
# 25 trials take about 160 s on two shared cores: CE_POWER_CUT_TRIALS=25 runs them all.
TRIALS = int(os.environ.get("CE_POWER_CUT_TRIALS", "4"))


def ce(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "9", "--quiet", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def descendants(root: int) -> set[int]:
    """`root` and every process below it (ce is a child subreaper: orphans stay below it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def power_cut(root: int) -> None:
    """Freeze the whole tree (so nothing starts or cleans up meanwhile), then SIGKILL it all."""
    stopped: set[int] = set()
    while True:
        found = descendants(root) - stopped
        if not found:
            break
        for pid in found:
            signal_quietly(pid, signal.SIGSTOP)
        stopped |= found
    for pid in stopped:
        signal_quietly(pid, signal.SIGKILL)


def signal_quietly(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The batch repository every trial copies, and how long an uninterrupted run takes."""
    base = tmp_path_factory.mktemp("power-cut")
    repo = make_batch_repo(base / "template" / "repo", SPECS, batch="9", config=CONFIG)
    trial = base / "reference" / "repo"
    shutil.copytree(repo, trial, symlinks=True)
    started = time.monotonic()
    done = ce(trial)
    assert done.returncode == 0, done.stdout + done.stderr
    return repo, time.monotonic() - started


def test_power_cut_at_random_moments_then_one_resume_finishes(
    tmp_path: Path, template: tuple[Path, float], capsys: pytest.CaptureFixture[str]
) -> None:
    source, duration = template
    rng = random.Random(13)
    started = time.monotonic()
    for n in range(TRIALS):
        repo = tmp_path / f"t{n}" / "repo"
        shutil.copytree(source, repo, symlinks=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "ce", "batch-exe", "--batch", "9", "--quiet"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, duration))
        power_cut(child.pid)
        child.wait()
        checkpoint = repo / ".ce" / "tmp" / "batch-execution-9.json"
        done = ce(repo, "--resume") if checkpoint.exists() else ce(repo)
        assert done.returncode == 0, f"trial {n}:\n{done.stdout}\n{done.stderr}"
        assert_merged_once(repo, [s.id for s in SPECS])
    with capsys.disabled():
        took = time.monotonic() - started
        print(f"\npower cut: {TRIALS} trials resumed in {took:.1f}s (a run takes {duration:.1f}s)")
