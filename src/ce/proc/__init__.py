"""The one process helper: run a command to completion, or supervise a process group.

Nothing outside this package imports `subprocess`. Commands are argv lists, never a shell line.

Supervision works on process groups: `spawn_group` starts the child as the leader of a new
session, so everything it starts stays in its group unless it leaves on purpose, and
`stop_group` signals the whole group. On Linux `ce` also becomes a child subreaper when it
first spawns a group, so members orphaned by their parent (a double-forked daemon) are
re-parented to us and reaped by `stop_group` instead of lingering as zombies.

A descendant that calls `setsid()` or `setpgid()` leaves the group, but not its environment:
every child gets its own `CE_RUN_TOKEN`, and stopping it also stops every process whose
environment carries that token (Linux /proc; a process that clears its environment still
escapes). A command is judged by its exit status: once it exited, its pipes get a moment to
close, then whatever still holds them is stopped.

The package, one part each: `command` (run to completion), `group` (a supervised child and its
log), `stopping` (signals, reaping, the subreaper), `checks` (the contained commands running
now, and a caller's scope of them), `procfs` (/proc inspection, the run token), `result`
(Completed, ProcessError), `shim` (an agent detached from its launcher, a Ray worker:
`spawn_shim`, `ShimChild`; the running shim is `shim_run`, its status file `shim_status`).
`shim` is imported by its own name, not from here: `python -m ce.proc.shim` must not find it
imported already.
"""

from __future__ import annotations

from ce.proc.checks import CheckScope, checks_within, running_checks, stop_checks
from ce.proc.command import run
from ce.proc.group import Child, OutputFilter, Supervised, spawn_group, stop_group
from ce.proc.procfs import RUN_MARK, group_alive, group_working_in, new_token, tagged
from ce.proc.result import Completed, ProcessError
from ce.proc.stopping import kill_pgid

__all__ = [
    "RUN_MARK",
    "CheckScope",
    "Child",
    "Completed",
    "OutputFilter",
    "ProcessError",
    "Supervised",
    "checks_within",
    "group_alive",
    "group_working_in",
    "kill_pgid",
    "new_token",
    "run",
    "running_checks",
    "spawn_group",
    "stop_checks",
    "stop_group",
    "tagged",
]
