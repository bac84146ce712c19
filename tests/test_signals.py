"""The signals that stop a run (Ctrl-C, SIGTERM, SIGHUP): agents stopped, state saved,
resumable; a second signal while stopping exits at once with 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batchkit import Spec, make_batch_repo, write
from clikit import CHILD_ENV


def sleepers(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def start(tmp_path: Path, marker: str) -> tuple[Path, subprocess.Popen[str]]:
    specs = [
        Spec(id="PRP-7.1.1", title="Slow", phases=[[f"sleep {marker}"]], files=["s.txt"]),
        Spec(id="PRP-7.1.2", title="Quick", phases=[[write("q.txt", "q")]], files=["q.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not sleepers(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    return repo, child


def checkpoint_status(repo: Path) -> str:
    data = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    return str(data["status"])


def test_sighup_stops_like_sigterm_even_with_the_terminal_gone(tmp_path: Path) -> None:
    marker = "30.0701"
    repo, child = start(tmp_path, marker)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the terminal is gone: every write now fails
    child.stderr.close()
    child.send_signal(signal.SIGHUP)
    assert child.wait(timeout=60) == 130
    assert not sleepers(f"sleep {marker}")  # the agent did not run on unwatched
    assert checkpoint_status(repo) == "INTERRUPTED"


@pytest.mark.parametrize(("first", "second"), [(signal.SIGTERM, signal.SIGINT)])
def test_a_second_signal_while_stopping_exits_130(
    tmp_path: Path, first: signal.Signals, second: signal.Signals
) -> None:
    marker = "30.0702"
    repo, child = start(tmp_path, marker)
    child.send_signal(first)
    child.send_signal(second)
    child.communicate(timeout=60)
    assert child.returncode == 130
    deadline = time.monotonic() + 10
    while sleepers(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)  # a group stop already under way finishes on its own
    assert checkpoint_status(repo) in ("IN_PROGRESS", "INTERRUPTED")


CHECKS = {
    # The branch's own L3: it runs in the PRP's worktree.
    "branch": 'level3 = "sleep {marker}"',
    # Only the merged tree's L3 sleeps: it runs in the integration worktree, from the lane.
    "merged tree": ("level3 = \"bash -c 'case $PWD in *integration*) sleep {marker};; esac'\""),
}


@pytest.mark.parametrize("where", sorted(CHECKS))
def test_ctrl_c_during_a_check_stops_it_within_seconds(tmp_path: Path, where: str) -> None:
    marker = "60.0704" if where == "branch" else "60.0705"
    specs = [
        Spec(id="PRP-7.1.1", title="One", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(id="PRP-7.1.2", title="Two", phases=[[write("b.txt", "b")]], files=["b.txt"]),
    ]
    config = (
        'executor = "script"\nauto_review = false\n[monitor]\npoll_seconds = 0.2\n'
        f"[validate]\n{CHECKS[where].format(marker=marker)}\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not sleepers(f"sleep {marker}"):
        assert time.monotonic() < deadline, "the check never started"
        assert child.poll() is None, "the batch ended before its check ran"
        time.sleep(0.05)
    stopped_at = time.monotonic()
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) == 130
    assert time.monotonic() - stopped_at < 15  # not the validation timeout
    assert not sleepers(f"sleep {marker}")  # and the check is not left running
    assert checkpoint_status(repo) == "INTERRUPTED"
