"""The `command` executor: any command line from `[executor.command] run`, never through a shell."""

from __future__ import annotations

import shlex
from pathlib import Path

from ce.agents.base import Assessment, ExecutorJob, write_prompt
from ce.core.errors import CeError

PLACEHOLDERS = ("prp_id", "prp_path", "model", "resume_from", "worktree", "prompt_file")


class CommandExecutor:
    name = "command"

    def __init__(self, template: str) -> None:
        self.template = template

    def preflight(self, repo_root: Path) -> None:
        if not self.template.strip():
            raise CeError(
                "--executor command needs a command line: set `run` under `[executor.command]` "
                'in .ce/config.toml, e.g. run = "my-agent --prp {prp_path} --model {model}".'
            )
        self._render(dict.fromkeys(PLACEHOLDERS, "x"))

    def command(self, job: ExecutorJob) -> list[str]:
        prompt = write_prompt(job)
        return self._render(
            {
                "prp_id": job.prp.id,
                "prp_path": str(job.prp_path),
                "model": job.model,
                "resume_from": str(job.resume_from),
                "worktree": str(job.worktree),
                "prompt_file": str(prompt),
            }
        )

    def _render(self, values: dict[str, str]) -> list[str]:
        # Split first, substitute after: a value with spaces or quotes stays one argument.
        try:
            tokens = shlex.split(self.template)
            return [token.format_map(values) for token in tokens]
        except (ValueError, KeyError, IndexError) as exc:
            raise CeError(
                f"[executor.command] run = {self.template!r} cannot be used: {exc}. "
                f"Placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
                "write {{ and }} for literal braces."
            ) from None

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        return Assessment()
