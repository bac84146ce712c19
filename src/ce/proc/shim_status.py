"""The agent shim's status file: who runs under it and, at the end, how it ended (JSON,
replaced atomically, so a reader sees a whole record or the one before)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Literal

StopReason = Literal["signal", "worker-gone", "coordinator-gone", "shim-gone"]


class ShimError(OSError):
    """The shim did not start (or its status file cannot be read); the message has its log."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShimStatus:
    """The status file. First only `shim_pid`; once the agent runs, who it is; at the end,
    `returncode` (the agent's, negative for a signal) and why it was stopped (None: it ended)."""

    shim_pid: int
    shim_started: int | None = None  # /proc start time: a later pid of that number is not it
    grace: float = 5.0
    agent_pid: int | None = None
    pgid: int | None = None
    token: str | None = None  # the agent's CE_RUN_TOKEN
    returncode: int | None = None
    stopped: StopReason | None = None
    error: str | None = None  # why the agent could not start

    def write(self, path: Path) -> None:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.returncode is not None:
            data["stopped"] = self.stopped  # the end record always says it, null included
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(data, sort_keys=True) + "\n", encoding="utf-8")
        staging.replace(path)

    @classmethod
    def read(cls, path: Path) -> ShimStatus | None:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ShimError(f"cannot read the shim's status file {path}: {exc}") from exc
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    @property
    def started(self) -> bool:
        return self.agent_pid is not None or self.returncode is not None
