"""Stopping processes: signal a group, wait it out, SIGKILL, reap; stop what left the group
with setsid by its run token; and become the subreaper that lets us reap orphans at all."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Protocol

from ce.proc.procfs import group_alive, pid_alive, tagged

DRAIN_SECONDS = 5.0  # after killing a timed-out group, how long its pipes may take to close
POLL_SECONDS = 0.05
_KILL_WAIT_SECONDS = 5.0  # after SIGKILL, how long the group may take to disappear
_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_PR_GET_CHILD_SUBREAPER = 37


class Leader(Protocol):
    """A group leader whose exit status its own handle (Popen) collects."""

    def poll(self) -> int | None: ...


def kill_pgid(pgid: int, grace: float) -> None:
    """Stop a group recorded by an earlier run of `ce` (not our child): SIGTERM, then SIGKILL.

    The caller vouches that `pgid` is still that group: once it died its number may be reused.
    """
    stop_pgid(pgid, grace, None)


def signal_group(pgid: int, signum: signal.Signals) -> None:
    # PermissionError: macOS says so for a group of zombies.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def signal_pids(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def stop_pgid(pgid: int, grace: float, leader: Leader | None) -> None:
    """SIGTERM to the group, up to `grace` seconds, then SIGKILL; reaping what we may."""
    signal_group(pgid, signal.SIGTERM)
    if not _wait_gone(pgid, time.monotonic() + grace, leader):
        signal_group(pgid, signal.SIGKILL)
        _wait_gone(pgid, time.monotonic() + _KILL_WAIT_SECONDS, leader)


def _wait_gone(pgid: int, deadline: float, leader: Leader | None) -> bool:
    """Reap what we may until no process of the group runs, or the deadline passes."""
    while True:
        if leader is None or leader.poll() is not None:
            # Only once Popen has reaped the leader: waitpid(-pgid) must not steal its status.
            reap_group(pgid)
            if not group_alive(pgid):
                reap_group(pgid)  # members that became zombies since the first pass
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def stop_leftovers(pgid: int, token: str) -> None:
    """What an exited command left running: its group, and what escaped it."""
    signal_group(pgid, signal.SIGKILL)
    stop_tagged(token, 0.0, pgid)
    reap_group(pgid)


def stop_tagged(token: str, grace: float, leader: int) -> None:
    """Stop every process carrying CE_RUN_TOKEN=`token`: SIGTERM, `grace`, SIGKILL; reap
    those re-parented to us (we are a subreaper). Not the `leader`: its Popen reaps it."""
    pids = [pid for pid in tagged(token) if pid != leader]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        signal_pids(pids, signum)
        deadline = time.monotonic() + (grace if signum == signal.SIGTERM else _KILL_WAIT_SECONDS)
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if not _reaped_or_dead(pid)]
            time.sleep(POLL_SECONDS if pids else 0)
        if not pids:
            return


def _reaped_or_dead(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    return not pid_alive(pid)


def reap_group(pgid: int) -> None:
    """Collect the exit status of every dead member of `pgid` that is our child."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@functools.cache
def become_subreaper() -> None:
    """Have orphaned descendants re-parented to us (Linux), so `stop_group` can reap them."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # best effort: a failure only costs zombies


@contextlib.contextmanager
def not_subreaper() -> Iterator[None]:
    """Not a subreaper for a while (Linux): what is orphaned meanwhile goes to init, not to us.

    How a detaching child truly leaves us: were we a subreaper, it would be re-parented to us
    again, and a process that kills its children on exit (a Ray worker) would take it along.
    """
    if sys.platform != "linux":
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
    if flag.value:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    try:
        yield
    finally:
        if flag.value:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
