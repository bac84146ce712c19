"""Run a real agent CLI the way the engine's worker does: a PRP job in a linked worktree, the
executor's argv in its own process group, output to a log, then the executor's assessment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce import proc
from ce.agents.base import Assessment, Executor, ExecutorJob
from ce.git import init_repo
from ce.prp.model import Phase, Prp, StatusClass

GIT_IDENTITY = ("-c", "user.name=ce test", "-c", "user.email=test@example.invalid")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_worktree(tmp: Path) -> Path:
    """A repository at tmp/repo and a linked worktree of it at tmp/wt on branch `work`."""
    repo = init_repo(tmp / "repo", user=("ce test", "test@example.invalid"))
    (repo.path / "README.md").write_text("test repo\n", encoding="utf-8")
    repo.commit_all("initial")
    git(repo.path, "worktree", "add", "-q", "-b", "work", str(tmp / "wt"))
    return tmp / "wt"


def make_job(
    tmp: Path,
    prp_id: str,
    titles: Sequence[str],
    *,
    resume_from: int = 1,
    validation: Sequence[str] = (),
    model: str = "sonnet",
) -> ExecutorJob:
    worktree = tmp / "wt" if (tmp / "wt").is_dir() else make_worktree(tmp)
    prp_path = tmp / "repo" / f"{prp_id}.md"
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
        repo_root=tmp / "repo",
        worktree=worktree,
        branch="work",
        batch_id="7",
        stage=1,
        resume_from=resume_from,
        model=model,
        scratch=tmp / "repo" / ".ce" / "tmp" / "scratch" / prp_id,
        validation_commands=tuple(validation),
    )


@dataclass(frozen=True, kw_only=True)
class Launch:
    code: int
    output: str
    assessment: Assessment


def launch(
    executor: Executor,
    job: ExecutorJob,
    env: Mapping[str, str],
    *,
    argv: Sequence[str] | None = None,
) -> Launch:
    """Spawn like the worker (own group, stdin closed, appending to a log), then assess.

    `env` is laid over this process's environment (the worker passes `job.environment()`).
    """
    argv = list(argv) if argv is not None else executor.command(job)
    log = job.scratch / "agent.log"
    offset = log.stat().st_size if log.exists() else 0
    child = proc.spawn_group(
        argv, cwd=job.worktree, env=job.environment({**os.environ, **env}), log_path=log
    )
    try:
        code = child.wait(120)
    finally:
        proc.stop_group(child, 2.0)
    assert code is not None, "the CLI did not finish within 120s"
    with log.open("rb") as stream:
        stream.seek(offset)
        output = stream.read().decode("utf-8", "replace")
    return Launch(code=code, output=output, assessment=executor.assess(job, code, output))


def subjects(worktree: Path) -> list[str]:
    return git(worktree, "log", "--format=%s").splitlines()[::-1]
