"""What supervising agents costs the orchestrator: 16 agents that sleep 60 s in parallel.

`ce` runs as its own process (`python -m ce batch-exe`, 16 one-phase PRPs whose script block is
`sleep 60`, `--max-parallel 16`). While every agent sleeps, the benchmark samples the ce
process's own CPU time (utime + stime of /proc/<pid>/stat: all its threads, none of its
children) and counts the git processes whose parent is the ce process, through a `git` on PATH
that logs its parent and subcommand, then execs the real git. Nothing in `ce` is changed.

`uv run python -m bench.supervision [POLL_SECONDS]` runs it alone (default poll: 5 s, twelve
polls in the minute; `[monitor]`'s own default is 60 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench import Row

AGENTS = 16
SLEEP_SECONDS = 60
POLL_SECONDS = 5.0
MAX_CPU_PERCENT = 2.0
MARGIN_SECONDS = 2.0  # the window ends this long before the first agent wakes up
MAX_GIT_PER_POLL = 1.0
CONFIG = """\
executor = "script"
max_parallel = {agents}
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = {poll}
"""
IDENTITY_CONFIG = (
    ("config", "user.name", "bench"),
    ("config", "user.email", "bench@example.invalid"),
)
INITIAL_COMMIT = ("commit", "-q", "-m", "initial")
GIT_SHIM = '#!/bin/sh\necho "$PPID $1" >> {calls}\nexec {git} "$@"\n'


class Sample(NamedTuple):
    at: float  # monotonic seconds
    cpu: float  # the process's own user + system CPU seconds


class Measure(NamedTuple):
    window: float  # seconds during which every agent slept
    window_cpu: float
    window_git: dict[str, int]  # subcommand -> processes ce spawned in the window
    run_seconds: float
    run_cpu: float
    run_git: int


def sleeping_prp(i: int, *, batch: int = 9, sleep: int = SLEEP_SECONDS) -> str:
    """A one-phase PRP of `batch` whose script sleeps `sleep` seconds, then writes a file."""
    return f"""---
prp_id: PRP-{batch}.{i}
title: Sleep {i}
status: planning
batch_id: {batch}
files_modified: [f{i}.txt]
---

# Sleep {i}

## Implementation

### Phase 1: Sleep

```bash run
sleep {sleep}
printf 'x\\n' > f{i}.txt
```
"""


def make_repo(parent: Path, poll: float) -> Path:
    root = parent / "repo"
    files = {
        f"PRPs/feature-requests/PRP-9.{i}-sleep.md": sleeping_prp(i) for i in range(1, AGENTS + 1)
    }
    files[".ce/config.toml"] = CONFIG.format(agents=AGENTS, poll=poll)
    files[".gitignore"] = ".ce/tmp/\n"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    for args in (("init", "-q", "-b", "main"), *IDENTITY_CONFIG, ("add", "-A"), INITIAL_COMMIT):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def git_shim(parent: Path) -> tuple[Path, Path]:
    """A directory with the logging `git`, and the log it writes."""
    real = shutil.which("git")
    if real is None:
        raise RuntimeError("git is not on PATH")
    bin_dir, calls = parent / "bin", parent / "git-calls"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(GIT_SHIM.format(calls=calls, git=real), encoding="utf-8")
    (bin_dir / "git").chmod(0o755)
    calls.touch()
    return bin_dir, calls


def cpu_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def sample(pid: int) -> Sample:
    return Sample(at=time.monotonic(), cpu=cpu_seconds(pid))


def git_calls(lines: list[str], pid: int) -> list[str]:
    """The subcommands of the git processes `pid` spawned, from the shim's log lines."""
    return [sub for parent, _, sub in (line.partition(" ") for line in lines) if parent == str(pid)]


def agents_saying(logs: Path, text: str) -> int:
    return sum(text in log.read_text(errors="replace") for log in logs.glob("PRP-9.*.log"))


def wait_until(condition: object, child: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not (callable(condition) and condition()):
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ce exited or took too long (exit code {child.returncode})")
        time.sleep(0.25)


def measure(poll: float) -> Measure:
    with tempfile.TemporaryDirectory(prefix="ce-bench-") as tmp:
        root = make_repo(Path(tmp), poll)
        bin_dir, calls = git_shim(Path(tmp))
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        argv = [sys.executable, "-m", "ce", "batch-exe", "--batch", "9", "--json"]
        logs = root / ".ce" / "tmp" / "logs"
        with (Path(tmp) / "ce.out").open("wb") as out:
            start = time.monotonic()
            child = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=out)
            wait_until(lambda: agents_saying(logs, "phase 1 block 1/1") > 0, child, 60)
            first = time.monotonic()
            wait_until(lambda: agents_saying(logs, "phase 1 block 1/1") == AGENTS, child, 60)
            begin, skip = sample(child.pid), len(calls.read_text().splitlines())
            time.sleep(max(0.0, first + SLEEP_SECONDS - MARGIN_SECONDS - time.monotonic()))
            end, upto = sample(child.pid), len(calls.read_text().splitlines())
            if agents_saying(logs, "committed phase 1"):
                raise RuntimeError("an agent finished inside the window: the machine is too slow")
            window_git = git_calls(calls.read_text().splitlines()[skip:upto], child.pid)
            last = sample(child.pid)
            while child.poll() is None:  # the process table entry lives until we reap it
                last = sample(child.pid)
                time.sleep(0.1)
            if child.returncode != 0:
                raise RuntimeError(
                    f"ce failed ({child.returncode}):\n{(Path(tmp) / 'ce.out').read_text()}"
                )
        return Measure(
            window=end.at - begin.at,
            window_cpu=end.cpu - begin.cpu,
            window_git={sub: window_git.count(sub) for sub in sorted(set(window_git))},
            run_seconds=last.at - start,
            run_cpu=last.cpu,
            run_git=len(git_calls(calls.read_text().splitlines(), child.pid)),
        )


def rows(result: Measure, poll: float) -> list[Row]:
    percent = 100 * result.window_cpu / result.window
    polls = result.window_git.get("for-each-ref", 0)
    spawned = sum(result.window_git.values())
    seen = ", ".join(f"{n} {sub}" for sub, n in result.window_git.items()) or "no git process"
    per_poll = (
        f"{spawned / polls:.2f} git process per poll"
        if polls
        else f"no poll fell due, {spawned} git processes"
    )
    return [
        Row(
            name=f"supervision: ce's CPU, {AGENTS} agents sleeping {SLEEP_SECONDS} s",
            figures=f"{result.window_cpu:.2f} s CPU in {result.window:.1f} s of waiting "
            f"(whole run: {result.run_cpu:.2f} s in {result.run_seconds:.1f} s)",
            ratio=f"{percent:.2f} % of one core (limit {MAX_CPU_PERCENT:g} %)",
            verdict="ok" if percent < MAX_CPU_PERCENT else "OVER",
        ),
        Row(
            name=f"supervision: git per poll, {AGENTS} PRP branches",
            figures=f"poll every {poll:g} s: {seen} while waiting "
            f"(whole run: {result.run_git} git processes)",
            ratio=f"{per_poll} (limit {MAX_GIT_PER_POLL:g} per poll)",
            verdict="ok" if spawned <= MAX_GIT_PER_POLL * polls else "OVER",
        ),
    ]


def run(poll: float = POLL_SECONDS) -> list[Row]:
    return rows(measure(poll), poll)


if __name__ == "__main__":
    for row in run(float(sys.argv[1]) if len(sys.argv) > 1 else POLL_SECONDS):
        print(row)
