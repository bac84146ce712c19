"""`[hooks]` commands (post_stage, post_batch): run in the checkout, contained and within
`[hooks] timeout_minutes` (a hook still running then is stopped with all it started); a
failure, a time-out included, is reported, never fatal."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ce import fsio, proc
from ce.core.events import Listener, Notice, NoticeLevel


@dataclass(frozen=True, kw_only=True)
class HookResult:
    hook: str
    stage: int | None
    command: str
    exit_code: int
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "stage": self.stage,
            "command": self.command,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
        }


def run_hook(
    name: str,
    command: str,
    *,
    cwd: Path,
    batch_id: str,
    stage: int | None,
    log: Path,
    emit: Listener,
    timeout_minutes: float,
) -> HookResult | None:
    if not command.strip():
        return None
    env = {**os.environ, "CE_BATCH_ID": batch_id, "CE_STAGE": str(stage or "")}
    limit = timeout_minutes * 60
    timed_out = False
    try:
        done = proc.run(
            shlex.split(command), cwd=cwd, env=env, check=False, timeout=limit, contain=True
        )
        code, output = done.returncode, done.stdout + done.stderr
    except proc.ProcessError as exc:
        code, output = exc.returncode, f"{exc}\n"
        timed_out = bool(exc.reason and exc.reason.startswith("timed out"))
    fsio.append_log(log, f"[ce] {name} (stage {stage}): {command}\n{output}[ce] exit {code}\n")
    level = NoticeLevel.INFO if code == 0 else NoticeLevel.WARNING
    what = f"timed out after {limit:g}s and was stopped" if timed_out else f"exited {code}"
    emit(Notice(level=level, message=f"{name} hook `{command}` {what} (see {log})"))
    return HookResult(hook=name, stage=stage, command=command, exit_code=code, timed_out=timed_out)
