"""Plain progress lines for pipes, CI and `--json`: one timestamped line per event, no escapes."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from ce.core.events import (
    BatchFinished,
    BatchStarted,
    Event,
    HealthChanged,
    LaneStep,
    MergeStep,
    Notice,
    NoticeLevel,
    PhaseCommitted,
    PrpChanged,
    StageFinished,
    StageStarted,
)

# Each step of the merge lane as it reads before its detail (`merging onto 61a9742878`).
_LANE_WORDS = {
    LaneStep.MERGE_TREE: "merging",
    LaneStep.CONFLICT: "merge conflict in",
    LaneStep.VALIDATE: "validating the merged",
    LaneStep.ADVANCE: "advancing",
    LaneStep.MERGED: "merged as",
}


def describe(event: Event) -> str | None:
    """One line for an event, or None for events too small to print on their own."""
    match event:
        case BatchStarted():
            verb = "resuming" if event.resumed else "starting"
            return (
                f"batch {event.batch_id}: {verb} {len(event.prps)} PRP(s) in "
                f"{len(event.stages)} stage(s) with the {event.executor} executor"
            )
        case StageStarted():
            return f"stage {event.stage}: {', '.join(event.prps)}"
        case StageFinished():
            return f"stage {event.stage}: finished"
        case PrpChanged():
            # A message that only repeats the state ("validated: validated") is not printed.
            said = event.message not in ("", event.state.value)
            suffix = f": {event.message}" if said else ""
            return f"{event.prp}: {event.state.value}{suffix}"
        case PhaseCommitted():
            return f"{event.prp}: phase {event.phase}/{event.total} committed - {event.title}"
        case HealthChanged():
            return f"{event.prp}: {event.health.value} (idle {event.idle_seconds:.0f}s)"
        case MergeStep():
            detail = f" {event.detail}" if event.detail else ""
            return f"{event.prp}: {_LANE_WORDS[event.step]}{detail}"
        case Notice():
            who = f"{event.prp}: " if event.prp else ""
            return f"{event.level}: {who}{event.message}"
        case BatchFinished():
            return f"batch {event.status}"
    return None


class PlainLines:
    """A thread-safe listener writing `HH:MM:SS line` to a stream."""

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self._lock = threading.Lock()
        self._gone = False  # the terminal was closed: the run goes on, unseen

    def __call__(self, event: Event) -> None:
        if self.quiet and not (isinstance(event, Notice) and event.level is NoticeLevel.ERROR):
            return
        line = describe(event)
        if line is None:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        with self._lock:
            if self._gone:
                return
            try:
                self.stream.write(f"{stamp} {line}\n")
                self.stream.flush()
            except (OSError, ValueError):  # EIO or EPIPE once the terminal is gone
                self._gone = True
