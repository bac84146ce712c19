"""The built-in `script` executor: runs each phase's `sh run` / `bash run` blocks, commits
each phase.

Deterministic and self-contained: the default for demos, tests and benchmarks. It runs as a child
process (`python -m ce.agents.script_runner`) so it is supervised exactly like an agent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ce.agents.base import Assessment, ExecutorJob


class ScriptExecutor:
    name = "script"

    def preflight(self, repo_root: Path) -> None:
        """Needs only bash and git, which the orchestrator checks anyway."""

    def command(self, job: ExecutorJob) -> list[str]:
        plan = job.scratch / "script-plan.json"
        job.scratch.mkdir(parents=True, exist_ok=True)
        phases = [
            {"number": p.number, "title": p.title, "blocks": list(p.blocks)}
            for p in job.prp.phases
            if p.number >= job.resume_from
        ]
        plan.write_text(json.dumps({"prp_id": job.prp.id, "phases": phases}), encoding="utf-8")
        return [sys.executable, "-m", "ce.agents.script_runner", str(plan)]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        return Assessment()
