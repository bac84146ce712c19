"""What the live board costs (issue 17, (f)): ce's own CPU with the board on a terminal vs --quiet.

The same batch twice per round, one after the other: AGENTS one-phase PRPs whose script block
sleeps SLEEP_SECONDS, all at once. Once with `--quiet` (its output in a file), once with the
live board on a pseudo-terminal of 120x40 (read as it comes, as a terminal does). While every
agent sleeps, the ce process's own CPU (the schedstat of each of its threads, none of its
children) is sampled over the same window; the ratio is taken round by round.

With `CE_BENCH_BASELINE=<src>` the ce found there runs its live board in the same rounds, just
after this one's, and a row gives its ratio to the same `--quiet` run and this one's live CPU
over its own, round by round.

`uv run python -m bench.board` runs it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from bench import Row, baseline_env
from bench.startup import spread
from bench.supervision import sleeping_prp, wait_until

ROUNDS = 3
AGENTS = 8
SLEEP_SECONDS = 20
MARGIN_SECONDS = 2.0
MAX_RATIO = 3.0
CONFIG = f"""\
executor = "script"
max_parallel = {AGENTS}
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = 5
"""


def make_repo(root: Path) -> Path:
    files = {
        f"PRPs/feature-requests/PRP-8.{i}-sleep.md": sleeping_prp(i, batch=8, sleep=SLEEP_SECONDS)
        for i in range(1, AGENTS + 1)
    }
    files[".ce/config.toml"] = CONFIG
    files[".gitignore"] = ".ce/tmp/\n"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    identity = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), (*identity, "commit", "-qm", "x")):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def cpu_seconds(pid: int) -> float:
    """The CPU time of `pid`'s threads in nanoseconds' precision (schedstat), where the clock
    ticks of /proc/<pid>/stat would count a quiet ce's whole window as one or two ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that has just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def agents_saying(logs: Path, text: str) -> int:
    return sum(text in log.read_text(errors="replace") for log in logs.glob("PRP-8.*.log"))


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):  # EIO once the terminal's last writer is gone
        while os.read(fd, 65536):
            pass


def window_cpu(root: Path, *, live: bool, base: dict[str, str] | None = None) -> float:
    """ce's own CPU seconds per second while every agent sleeps (the ce `base` runs, if given)."""
    argv = [sys.executable, "-m", "ce", "batch-exe", "--batch", "8"]
    env = {k: v for k, v in (base or os.environ).items() if k not in {"COLUMNS", "LINES"}}
    master = None
    if live:
        master, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        streams: dict[str, object] = {"stdout": terminal, "stderr": terminal}
        env["TERM"] = "xterm-256color"
    else:
        argv.append("--quiet")
        out = (root.parent / f"{root.name}.out").open("wb")
        streams = {"stdout": out, "stderr": out}
    child = subprocess.Popen(argv, cwd=root, env=env, stdin=subprocess.DEVNULL, **streams)  # type: ignore[call-overload]
    if master is not None:
        os.close(terminal)
        threading.Thread(target=_drain, args=(master,), daemon=True).start()
    logs = root / ".ce" / "tmp" / "logs"
    try:
        wait_until(lambda: agents_saying(logs, "phase 1 block 1/1") == AGENTS, child, 120)
        start, cpu = time.monotonic(), cpu_seconds(child.pid)
        first = start  # every agent is asleep from here, for at least the sleep's remainder
        time.sleep(max(0.0, first + SLEEP_SECONDS - 2 * MARGIN_SECONDS - time.monotonic()))
        used, elapsed = cpu_seconds(child.pid) - cpu, time.monotonic() - start
        if agents_saying(logs, "committed phase 1"):
            raise RuntimeError("an agent finished inside the window: the machine is too slow")
    finally:
        child.wait(timeout=600)
        if master is not None:
            os.close(master)
    if child.returncode != 0:
        raise RuntimeError(f"ce failed ({child.returncode}) in {root}")
    return used / elapsed


def run() -> list[Row]:
    quiet: list[float] = []
    live: list[float] = []
    before: list[float] = []
    base = baseline_env()
    with tempfile.TemporaryDirectory(prefix="ce-bench-board-") as tmp:
        for n in range(ROUNDS):
            quiet.append(window_cpu(make_repo(Path(tmp) / f"quiet-{n}"), live=False))
            live.append(window_cpu(make_repo(Path(tmp) / f"live-{n}"), live=True))
            if base is not None:
                repo = make_repo(Path(tmp) / f"before-{n}")
                before.append(window_cpu(repo, live=True, base=base))
    rows = [board_row("", quiet, live, verdict=True)]
    if before:
        rows.append(board_row("before: ", quiet, before, verdict=False))
        ratios = [a / max(b, 1e-6) for a, b in zip(live, before, strict=True)]
        rows.append(
            Row(
                name="after / before: board, ce's CPU with the live board",
                figures=f"live {spread([100 * v for v in live], ' %', 2)} vs "
                f"{spread([100 * v for v in before], ' %', 2)} of one core",
                ratio=spread(ratios, "x", 2),
                verdict="",
            )
        )
    return rows


def board_row(label: str, quiet: list[float], live: list[float], *, verdict: bool) -> Row:
    ratios = [b / max(a, 1e-6) for a, b in zip(quiet, live, strict=True)]
    within = statistics.median(ratios) <= MAX_RATIO
    return Row(
        name=f"{label}board: ce's CPU, live board vs --quiet, {AGENTS} agents sleeping",
        figures=f"--quiet {spread([100 * q for q in quiet], ' %', 2)}, "
        f"live {spread([100 * v for v in live], ' %', 2)} of one core",
        ratio=f"{spread(ratios, 'x', 1)} (limit {MAX_RATIO:g}x)",
        verdict=("ok" if within else "OVER") if verdict else "",
    )


if __name__ == "__main__":
    for row in run():
        print(row)
