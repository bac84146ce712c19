"""`ce demo` in a real terminal (tmux): the live board shows every PRP while the batch works."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
DEMO_IDS = {"PRP-1.1.1", "PRP-1.2.1", "PRP-1.2.2", "PRP-1.2.3", "PRP-1.3.1"}
WORKING = re.compile(r"\b(preparing|running|validating|validated|merging)\b")
WIDTH, HEIGHT = 110, 40

pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (apt-get install -y tmux)"
)


@pytest.fixture
def server() -> Iterator[list[str]]:
    """A private tmux server (its own socket), killed at the end whatever happened."""
    # Not under tmp_path: a socket path must stay short (about 100 bytes).
    home = Path(tempfile.mkdtemp(prefix="ce-tmux-"))
    argv = [str(TMUX), "-S", str(home / "socket"), "-f", "/dev/null"]
    yield argv
    subprocess.run([*argv, "kill-server"], capture_output=True, check=False)
    shutil.rmtree(home, ignore_errors=True)


def capture(server: list[str]) -> str:
    done = subprocess.run(
        [*server, "capture-pane", "-p", "-S", "-", "-t", "demo"],  # with the scrolled-off lines
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def shown(screen: str) -> set[str]:
    return set(re.findall(r"PRP-1\.\d\.\d", screen))


def test_the_demo_shows_every_prp_while_it_works(server: list[str], tmp_path: Path) -> None:
    demo = shlex.join([sys.executable, "-m", "ce", "demo", "--dir", str(tmp_path)])
    command = f"{demo}; echo CE-EXIT=$?; sleep 600"
    subprocess.run(
        [*server, "new-session", "-d", "-s", "demo", "-x", str(WIDTH), "-y", str(HEIGHT), command],
        check=True,
        env={**os.environ, "TERM": "xterm-256color"},
    )

    screens = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        screens.append(capture(server))
        if "CE-EXIT=" in screens[-1]:
            break
        time.sleep(0.1)

    final = screens[-1]
    assert "CE-EXIT=0" in final, final
    working = [s for s in screens if WORKING.search(s) and shown(s) >= DEMO_IDS]
    assert working, "no screen showed every PRP while the batch worked:\n" + screens[0]
    for screen in screens:  # redrawn in place: never two boards, no line past the edge
        assert screen.count("Batch 1 · ") <= 1, screen
        assert all(len(line) <= WIDTH for line in screen.splitlines())
    board = final.split("Batch 1: COMPLETED")[0]
    assert "5/5 merged" in board and shown(board) >= DEMO_IDS
    assert "Read the report:" in final
