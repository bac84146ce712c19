"""`[hooks]` commands (post_stage, post_batch): run in the checkout; a failure is reported,
never fatal."""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "stage": self.stage,
            "command": self.command,
            "exit_code": self.exit_code,
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
) -> HookResult | None:
    if not command.strip():
        return None
    env = {**os.environ, "CE_BATCH_ID": batch_id, "CE_STAGE": str(stage or "")}
    try:
        done = proc.run(shlex.split(command), cwd=cwd, env=env, check=False)
        code, output = done.returncode, done.stdout + done.stderr
    except proc.ProcessError as exc:
        code, output = exc.returncode, str(exc)
    fsio.append_log(log, f"[ce] {name} (stage {stage}): {command}\n{output}[ce] exit {code}\n")
    level = NoticeLevel.INFO if code == 0 else NoticeLevel.WARNING
    emit(Notice(level=level, message=f"{name} hook `{command}` exited {code} (see {log})"))
    return HookResult(hook=name, stage=stage, command=command, exit_code=code)
