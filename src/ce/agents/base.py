"""The executor interface and what every executor is given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Protocol

from ce import git
from ce.prp.model import Prp

TEMPLATE_OVERRIDE = Path(".ce") / "templates" / "executor.md"


@dataclass(frozen=True, kw_only=True)
class Task:
    """What one launch is for: "implement" the phases left, "resolve-conflict" (merge
    `conflict_with` into the branch and resolve, the `agent` conflict policy) or "review"."""

    kind: str = "implement"
    conflict_with: str | None = None
    notes: str = ""  # task-specific text for the prompt (the PRPs a review looks at)

    @classmethod
    def resolving(cls, conflict_with: str | None) -> Task:
        """Implementing, or, given the target it conflicts with, resolving that conflict."""
        if conflict_with is None:
            return cls()
        return cls(kind="resolve-conflict", conflict_with=conflict_with)


@dataclass(frozen=True, kw_only=True)
class ExecutorJob:
    """One launch of an executor for one PRP, in its worktree."""

    prp: Prp
    prp_path: Path  # absolute path of the PRP file (in the user's checkout)
    repo_root: Path
    worktree: Path
    branch: str
    batch_id: str
    stage: int
    resume_from: int  # first phase still to do, 1-based
    model: str
    scratch: Path  # per-PRP directory for the prompt, plans and the result file
    validation_commands: tuple[str, ...] = ()
    task: Task = Task()

    @property
    def result_path(self) -> Path:
        return self.scratch / "result.json"

    @property
    def prompt_path(self) -> Path:
        return self.scratch / "prompt.md"

    @property
    def phases_left(self) -> tuple[int, ...]:
        return tuple(p.number for p in self.prp.phases if p.number >= self.resume_from)

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        # Without the caller's GIT_DIR & co: the executor's git must see its worktree.
        env = git.git_env(os.environ if base is None else base, c_locale=False)
        env.update(
            CE_PRP_ID=self.prp.id,
            CE_PRP_PATH=str(self.prp_path),
            CE_BATCH_ID=self.batch_id,
            CE_STAGE=str(self.stage),
            CE_RESUME_FROM=str(self.resume_from),
            CE_MODEL=self.model,
            CE_RESULT_PATH=str(self.result_path),
            CE_WORKTREE=str(self.worktree),
            CE_TASK=self.task.kind,
        )
        if self.task.conflict_with is not None:
            env["CE_CONFLICT_WITH"] = self.task.conflict_with
        return env | git.fence.agent_env(self.worktree)  # only its own branch can move


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """What an executor read from its own output after one launch (agents' reports)."""

    error: str | None = None  # a failure the exit code does not show (is_error, denials...)
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    session_id: str | None = None
    retry_after: float | None = None  # rate-limited: seconds before launching agents again


class Executor(Protocol):
    """What the orchestrator needs of an executor; supervision, judging and merging are its own."""

    name: str

    def preflight(self, repo_root: Path) -> None:
        """Raise CeError (exit 2, nothing changed) when this executor cannot run here."""

    def command(self, job: ExecutorJob) -> list[str]:
        """The argv to start in the worktree (after any files it needs are written)."""

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        """Judge one launch from its exit code and the output it wrote to its log."""


def render_prompt(job: ExecutorJob) -> str:
    """The executor prompt: the repository's `.ce/templates/<task>.md`, else the package's
    (`executor.md` for implementing, `resolve-conflict.md` for the agent conflict policy)."""
    kind = job.task.kind
    name = "executor.md" if kind == "implement" else f"{kind}.md"
    override = job.repo_root / TEMPLATE_OVERRIDE.with_name(name)
    if override.is_file():
        text = override.read_text(encoding="utf-8")
    else:
        text = (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")
    phases = "\n".join(
        f"- Phase {p.number}: {p.title}" for p in job.prp.phases if p.number >= job.resume_from
    )
    validation = "\n".join(f"- `{cmd}`" for cmd in job.validation_commands) or "- (none configured)"
    return Template(text).safe_substitute(
        prp_id=job.prp.id,
        conflict_with=job.task.conflict_with or "",
        notes=job.task.notes,
        prp_title=job.prp.title,
        prp_path=str(job.prp_path),
        worktree=str(job.worktree),
        branch=job.branch,
        batch_id=job.batch_id,
        stage=str(job.stage),
        resume_from=str(job.resume_from),
        phases_left=phases or "- (none)",
        validation_commands=validation,
        result_path=str(job.result_path),
        model=job.model,
    )


def write_prompt(job: ExecutorJob) -> Path:
    job.scratch.mkdir(parents=True, exist_ok=True)
    job.prompt_path.write_text(render_prompt(job), encoding="utf-8")
    return job.prompt_path
