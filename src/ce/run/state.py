"""Batch state: the seed's checkpoint (a readable summary) and the journal (exact resume)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ce.run import faults
from ce.secrets import masked_json


@dataclass(frozen=True, kw_only=True)
class StateDir:
    """`.ce/tmp/` in the user's checkout: checkpoint, journal, logs, per-PRP scratch files."""

    root: Path

    @classmethod
    def of(cls, repo_root: Path) -> StateDir:
        return cls(root=repo_root / ".ce" / "tmp")

    def checkpoint(self, batch_id: str) -> Path:
        return self.root / f"batch-execution-{batch_id}.json"

    def journal(self, batch_id: str) -> Path:
        return self.root / f"batch-{batch_id}.journal.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, prp_id: str) -> Path:
        return self.logs / f"{prp_id}.log"

    def scratch(self, prp_id: str) -> Path:
        return self.root / "run" / prp_id


class Journal:
    """Append-only JSON lines: an intent before each effect that matters, a fact after.

    The durability rule: every line is written and flushed to the kernel before the effect it
    announces, so a `kill -9` of ce at any instant loses none of them. Only an intent before
    an irreversible step is also fsynced (`SYNCED`): the target moving (`advance`), a push,
    merged branches deleted, a branch given up for a rerun. A power cut can lose the unsynced
    lines written since; what they said is found again in git (worktrees and branches, phase
    commits, merges found on the target by subject), as a lost checkpoint is (Invariant 8).

    `CE_TEST_KILL_AT` (an integer k) makes the process SIGKILL itself right after its k-th write,
    `CE_TEST_KILL_AFTER` after a named entry (`ce.run.faults`): the fault-injection harness uses
    them to prove that resume is exact at every step.
    """

    SYNCED = frozenset({"advance", "push", "delete-branches", "rerun"})  # intents

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: TextIO | None = (
            None  # opened on the first write: a refused run writes nothing
        )
        self._writes = 0
        kill_at = os.environ.get("CE_TEST_KILL_AT", "")
        self._kill_at = int(kill_at) if kill_at.isdigit() else None
        self._kill_after = faults.KillAfter.from_environment()

    def intent(self, kind: str, **data: Any) -> None:
        entry = {"t": round(time.time(), 3), "intent": kind, **data}
        self._write(entry, sync=kind in self.SYNCED)

    def fact(self, kind: str, **data: Any) -> None:
        self._write({"t": round(time.time(), 3), "fact": kind, **data})

    def _write(self, entry: dict[str, Any], *, sync: bool = False) -> None:
        line = masked_json(entry, sort_keys=True)
        with self._lock:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write(line)
            self._handle.flush()  # the kernel's now: a kill -9 cannot lose it
            if sync:
                os.fsync(self._handle.fileno())
            self._writes += 1
            if self._kill_at is not None and self._writes == self._kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if self._kill_after is not None:
                self._kill_after.written(entry)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return entries
        for raw in data.splitlines():
            try:
                entry = json.loads(raw.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError included
                continue  # a line torn by a crash mid-write: the effect it announced is re-checked
            if isinstance(entry, dict):
                entries.append(entry)
        return entries
