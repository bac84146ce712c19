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
