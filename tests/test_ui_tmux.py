"""`ce demo` in a real terminal (tmux): the live board shows every PRP while the batch works."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
DEMO_IDS = {"PRP-1.1.1", "PRP-1.2.1", "PRP-1.2.2", "PRP-1.2.3", "PRP-1.3.1"}
WORKING = re.compile(r"\b(preparing|running|validating|validated|merging)\b")
WIDTH, HEIGHT, NARROW = 110, 40, 72
# The pane's size must rule: COLUMNS and LINES (which a pytest-xdist worker sets to 80x24)
# would override it for the demo's board.
PANE_ENV = {
    **{k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}},
    "TERM": "xterm-256color",
}

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


def capture(server: list[str], *, history: bool = False) -> str:
    """The visible screen, or everything including what scrolled off the top."""
    scrolled = ["-S", "-"] if history else []
    done = subprocess.run(
        [*server, "capture-pane", "-p", *scrolled, "-t", "demo"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def resize(server: list[str], width: int) -> None:
    """Make the pane `width` wide while the demo is stopped, letting it go on once it can see it.

    tmux reflows its screen at once but tells the program (TIOCSWINSZ, SIGWINCH) later, from its
    event loop: a board drawn in between is drawn for the old width onto the re-wrapped screen,
    and no program can know that it was. Stopped over the change, the demo's next picture is
    its first one after it, as on a terminal that tells before it reflows.
    """
    pane = subprocess.run(
        [*server, "display-message", "-p", "-t", "demo", "#{pane_pid} #{pane_tty}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    group, tty = int(pane[0]), pane[1]  # the pane's first process leads its session and group
    os.killpg(group, signal.SIGSTOP)
    try:
        subprocess.run([*server, "resize-window", "-t", "demo", "-x", str(width)], check=True)
        fd = os.open(tty, os.O_RDONLY | os.O_NOCTTY)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
                if struct.unpack("HHHH", size)[1] == width:
                    break
                time.sleep(0.01)
        finally:
            os.close(fd)
    finally:
        os.killpg(group, signal.SIGCONT)


def shown(screen: str) -> set[str]:
    return set(re.findall(r"PRP-1\.\d\.\d", screen))


def test_the_demo_shows_every_prp_while_it_works(server: list[str], tmp_path: Path) -> None:
    demo = shlex.join([sys.executable, "-m", "ce", "demo", "--dir", str(tmp_path)])
    # Earlier output fills the screen: the board is drawn at its bottom, as in a used terminal.
    command = f"seq {HEIGHT}; {demo}; echo CE-EXIT=$?; sleep 600"
    subprocess.run(
        [*server, "new-session", "-d", "-s", "demo", "-x", str(WIDTH), "-y", str(HEIGHT), command],
        check=True,
        env=PANE_ENV,
    )

    screens: list[str] = []
    resized_at = None  # the board must follow a terminal made narrower while it works
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        screens.append(capture(server))
        if "CE-EXIT=" in screens[-1]:
            break
        if resized_at is None and WORKING.search(screens[-1]):
            resize(server, NARROW)
            resized_at = len(screens)
        time.sleep(0.1)

    final = capture(server, history=True)
    assert "CE-EXIT=0" in final, final
    working = [s for s in screens if WORKING.search(s) and shown(s) >= DEMO_IDS]
    assert working, "no screen showed every PRP while the batch worked:\n" + screens[0]
    # Redrawn in place: never two boards on the screen, nothing past its edge. (A terminal that
    # reflows on resize pushes rows of the old picture into its scrollback: out of our reach.)
    for n, screen in enumerate(screens):
        assert screen.count("Batch 1 · ") <= 1, screen
        width = NARROW if resized_at is not None and n > resized_at else WIDTH
        assert all(len(line) <= width for line in screen.splitlines()), screen
    board = final.split("Batch 1: COMPLETED")[0]
    assert "5/5 merged" in board and shown(board) >= DEMO_IDS
    assert "Read the report:" in final
