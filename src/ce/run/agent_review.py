"""The optional agent review after a stage: the configured executor reads what the stage merged
and answers PASSED or FAILED with findings, as JSON in its result file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ce import proc
from ce.agents.base import Executor, ExecutorJob, Task
from ce.prp.model import Prp
from ce.run.monitor import append_log


@dataclass(frozen=True, kw_only=True)
class AgentVerdict:
    passed: bool
    findings: tuple[str, ...]


def agent_review(
    *,
    executor: Executor,
    prps: list[Prp],
    repo_root: Path,
    worktree: Path,
    batch_id: str,
    stage: int,
    target: str,
    scratch: Path,
    log_path: Path,
    timeout_minutes: float,
) -> AgentVerdict:
    """Run the executor once with the review prompt in the integration worktree (at the
    target's tip) and read its verdict; no verdict is a FAILED review, never a pass."""
    listed = "\n".join(f"- {p.id}: {p.title} ({p.path})" for p in prps)
    job = ExecutorJob(
        prp=prps[0],
        prp_path=prps[0].path.resolve(),
        repo_root=repo_root,
        worktree=worktree,
        branch=target,
        batch_id=batch_id,
        stage=stage,
        resume_from=1,
        model="sonnet",
        scratch=scratch,
        task=Task(kind="review", notes=listed),
    )
    job.result_path.unlink(missing_ok=True)
    argv = executor.command(job)
    append_log(log_path, f"stage {stage} review: {' '.join(argv)}")
    child = proc.spawn_group(argv, cwd=worktree, env=job.environment(), log_path=log_path)
    code = child.wait(timeout_minutes * 60)
    if code is None:
        proc.stop_group(child)
        return AgentVerdict(passed=False, findings=("the review agent timed out",))
    return read_verdict(job.result_path, code)


def read_verdict(path: Path, code: int) -> AgentVerdict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        status = str(data["status"]).upper()
        findings = tuple(str(f) for f in data.get("findings") or ())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return AgentVerdict(
            passed=False,
            findings=(f"the review agent gave no verdict in {path} (exit code {code})",),
        )
    if status not in ("PASSED", "FAILED"):
        return AgentVerdict(passed=False, findings=(f"the review agent answered {status!r}",))
    return AgentVerdict(passed=status == "PASSED", findings=findings)
