"""Looking at processes through Linux /proc: who carries a run token, which groups still have
a live member, where they work. Elsewhere the answers are the safe ones."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RUN_MARK = "CE_RUN_TOKEN"  # marks everything a child started, setsid or not
_TOKENS = itertools.count(1)
_STAT_FIELDS = re.compile(r"\) (?P<state>\S) (?P<ppid>-?\d+) (?P<pgrp>-?\d+) ")
_START_TIME_FIELD = 19  # starttime, counted from the state field (proc(5): field 22)


def new_token() -> str:
    """A value of CE_RUN_TOKEN no other child of any `ce` process has."""
    return f"{os.getpid()}-{next(_TOKENS)}-{time.time_ns()}"


def tagged(token: str) -> list[int]:
    """The live processes whose environment carries CE_RUN_TOKEN=`token` (Linux /proc).

    Run after every agent stops, over every process of the machine: plain strings and `open`,
    no `Path` built per process (a third of the cost)."""
    needle = f"\0{RUN_MARK}={token}\0".encode()
    if not os.path.exists("/proc/self/environ"):  # noqa: PTH110 (plain strings: see above)
        return []
    me = str(os.getpid())
    found = []
    for name in os.listdir("/proc"):  # noqa: PTH208
        if not name.isdigit() or name == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:  # noqa: PTH123
                environ = handle.read()
        except OSError:
            continue  # gone, or not ours to read
        if needle in b"\0" + environ:
            found.append(int(name))
    return found


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies, on Linux, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to someone else
    return _has_live_member(pgid)


def group_working_in(pgid: int, directory: Path) -> bool:
    """Whether a live member of group `pgid` has its working directory in `directory`.

    How a resumed run tells an agent it launched earlier from an unrelated process that got the
    same group number since (after a reboot, say): it only stops groups working in its
    worktrees. Linux (/proc) only; elsewhere: False, so nothing is ever stopped by mistake.
    """
    proc = Path("/proc")
    root = directory.resolve()
    if not (proc / "self" / "stat").exists():
        return False
    for entry in proc.iterdir():
        if entry.name.isdigit() and _stat_says_live_member(entry / "stat", pgid):
            try:
                cwd = (entry / "cwd").readlink()
            except OSError:
                continue
            if cwd == root or root in cwd.parents:
                return True
    return False


@dataclass(frozen=True)
class Seen:
    """A live process as /proc shows it: where it works and its command name."""

    pid: int
    cwd: Path
    name: str


def processes() -> Iterator[Seen]:
    """Every process whose working directory can be read (Linux /proc; elsewhere none)."""
    proc = Path("/proc")
    for entry in proc.iterdir() if (proc / "self").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").readlink()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue  # gone, or not ours to look at
        yield Seen(pid=int(entry.name), cwd=cwd, name=name)


def holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux /proc; elsewhere: False)."""
    wanted = path.absolute()
    try:
        return any(fd.readlink() == wanted for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False  # gone, or not ours to look at


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs and is not a zombie (Linux /proc; elsewhere: assume not)."""
    return _stat_says_live(Path(f"/proc/{pid}/stat"))


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, zombies included (Linux /proc; elsewhere none)."""
    proc = Path("/proc")
    found = []
    for entry in proc.iterdir() if (proc / "self" / "stat").exists() else ():
        match = _stat_fields(entry / "stat") if entry.name.isdigit() else None
        if match is not None and int(match["ppid"]) == pid:
            found.append(int(entry.name))
    return found


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), so a recorded pid is known to be the same
    process later and not one that got its number since; None if it is gone (or not Linux)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[_START_TIME_FIELD]) if len(fields) > _START_TIME_FIELD else None


def _has_live_member(pgid: int) -> bool:
    """Whether a member of `pgid` is not a zombie (Linux /proc; elsewhere: assume so)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit() and _stat_says_live_member(entry / "stat", pgid):
            return True
    return False


def _stat_says_live_member(stat: Path, pgid: int) -> bool:
    match = _stat_fields(stat)
    return match is not None and int(match["pgrp"]) == pgid and match["state"] not in "ZX"


def _stat_says_live(stat: Path) -> bool:
    match = _stat_fields(stat)
    return match is not None and match["state"] not in "ZX"


def _stat_fields(stat: Path) -> re.Match[str] | None:
    try:
        text = stat.read_text(errors="replace")
    except OSError:
        return None  # exited while we looked
    # The command name may contain ") ", so parse from the last one.
    return _STAT_FIELDS.search(text, text.rfind(")"))
