"""Run the real Claude Code CLI the way the engine does, against the scripted fake API."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce import proc
from ce.agents.base import Assessment, ExecutorJob
from ce.agents.claude import ClaudeExecutor
from ce.config import AgentConfig
from ce.git import init_repo
from ce.prp.model import Phase, Prp, StatusClass
from fake_anthropic import FakeAnthropic

GIT_IDENTITY = ("-c", "user.name=ce test", "-c", "user.email=test@example.invalid")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_worktree(path: Path) -> Path:
    repo = init_repo(path, user=("ce test", "test@example.invalid"))
    (path / "README.md").write_text("test repo\n", encoding="utf-8")
    repo.commit_all("initial")
    return path


def make_job(
    tmp: Path,
    prp_id: str,
    titles: Sequence[str],
    *,
    resume_from: int = 1,
    validation: Sequence[str] = (),
    model: str = "sonnet",
) -> ExecutorJob:
    worktree = tmp / "wt" if (tmp / "wt").is_dir() else make_worktree(tmp / "wt")
    prp_path = tmp / f"{prp_id}.md"
    prp_path.write_text(f"# {prp_id}\n", encoding="utf-8")
    prp = Prp(
        id=prp_id,
        path=prp_path,
        title=f"{prp_id} work",
        status="planning",
        status_class=StatusClass.READY,
        phases=tuple(Phase(number=n, title=t) for n, t in enumerate(titles, start=1)),
    )
    return ExecutorJob(
        prp=prp,
        prp_path=prp_path,
        repo_root=worktree,
        worktree=worktree,
        branch="main",
        batch_id="7",
        stage=1,
        resume_from=resume_from,
        model=model,
        scratch=tmp / "scratch",
        validation_commands=tuple(validation),
    )


@dataclass(frozen=True, kw_only=True)
class Launch:
    code: int
    output: str
    assessment: Assessment


def launch(
    executor: ClaudeExecutor,
    job: ExecutorJob,
    api: FakeAnthropic,
    home: Path,
    *,
    argv: Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Launch:
    """Spawn like the engine's worker (own group, stdin closed, log file), then assess."""
    argv = list(argv) if argv is not None else executor.command(job)
    log = job.scratch / "agent.log"
    offset = log.stat().st_size if log.exists() else 0
    env = job.environment({**os.environ, **api.env(home), **(extra_env or {})})
    child = proc.spawn_group(argv, cwd=job.worktree, env=env, log_path=log)
    try:
        code = child.wait(120)
    finally:
        proc.stop_group(child, 2.0)
    assert code is not None, "the CLI did not finish within 120s"
    with log.open("rb") as stream:
        stream.seek(offset)
        output = stream.read().decode("utf-8", "replace")
    return Launch(code=code, output=output, assessment=executor.assess(job, code, output))


def claude_executor(binary: Path, **settings: object) -> ClaudeExecutor:
    return ClaudeExecutor(AgentConfig.model_validate({"binary": str(binary), **settings}))
