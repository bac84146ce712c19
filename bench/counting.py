"""Counting what a `ce` run costs in processes and syncs: a logging `git` first on PATH and an
`os.fsync` counter loaded into the ce process by a tiny `sitecustomize`.

`Counters(parent)` makes both in `parent`; `counters.env(base)` is the environment that turns
them on for a child (its PYTHONPATH keeps `base`'s after the counter's directory). Nothing in
`ce` is changed: the figures are what the real run did.

`uv run python -m bench.counting DIR -- COMMAND...` runs one command with both on and prints
the git subcommands it started, most frequent first (what to read when cutting git calls).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

# One line per git process: its parent pid, then its arguments (enough to tell calls apart).
GIT_SHIM = '#!/bin/sh\necho "$PPID $*" >> {calls}\nexec {git} "$@"\n'
# Every os.fsync of the process (any thread) is counted; the count is appended at exit.
SITECUSTOMIZE = """\
import atexit, os, threading
_real, _lock, _count = os.fsync, threading.Lock(), [0]
def _fsync(fd):
    with _lock:
        _count[0] += 1
    return _real(fd)
def _report():
    with open({log!r}, "a") as out:
        out.write(f"{{os.getpid()}} {{_count[0]}}\\n")
os.fsync = _fsync
atexit.register(_report)
"""


class Counters:
    """The logging git and the fsync counter, in `parent` (a fresh directory)."""

    def __init__(self, parent: Path) -> None:
        real = shutil.which("git")
        if real is None:
            raise RuntimeError("git is not on PATH")
        self.bin_dir, self.site_dir = parent / "bin", parent / "site"
        self.git_log, self.fsync_log = parent / "git-calls", parent / "fsyncs"
        self.bin_dir.mkdir()
        self.site_dir.mkdir()
        shim = self.bin_dir / "git"
        shim.write_text(GIT_SHIM.format(calls=self.git_log, git=real), encoding="utf-8")
        shim.chmod(0o755)
        site = SITECUSTOMIZE.format(log=str(self.fsync_log))
        (self.site_dir / "sitecustomize.py").write_text(site, encoding="utf-8")
        self.reset()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        python_path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(self.site_dir), python_path)))
        return env

    def reset(self) -> None:
        self.git_log.write_text("", encoding="utf-8")
        self.fsync_log.write_text("", encoding="utf-8")

    def git_calls(self) -> list[str]:
        """Each git process's arguments, in the order they started."""
        lines = self.git_log.read_text(encoding="utf-8").splitlines()
        return [line.partition(" ")[2] for line in lines]

    def fsyncs(self) -> int:
        """The fsyncs of every Python process that exited with the counter loaded."""
        lines = self.fsync_log.read_text(encoding="utf-8").splitlines()
        return sum(int(line.split()[1]) for line in lines)


def subcommands(calls: list[str]) -> collections.Counter[str]:
    """How often each git subcommand ran (`-c key=value` options skipped)."""
    found: collections.Counter[str] = collections.Counter()
    for call in calls:
        words = call.split()
        while words and words[0] in ("-c", "-C"):
            words = words[2:]
        found[" ".join(words[:2]) if words else "(none)"] += 1
    return found


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit("usage: python -m bench.counting CWD -- COMMAND...")
    split = argv.index("--")
    cwd, command = Path(argv[0]), argv[split + 1 :]
    with tempfile.TemporaryDirectory(prefix="ce-count-") as tmp:
        counters = Counters(Path(tmp))
        subprocess.run(command, cwd=cwd, env=counters.env(), check=False)
        calls = counters.git_calls()
        for name, count in subcommands(calls).most_common():
            print(f"{count:6d}  {name}")
        print(f"{len(calls):6d}  git processes; {counters.fsyncs()} fsyncs")


if __name__ == "__main__":
    main(sys.argv[1:])
