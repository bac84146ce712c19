"""The built-in `script` executor: runs each phase's `sh run` / `bash run` blocks, commits each
phase.

Deterministic and self-contained: the default for demos, tests and benchmarks. Each launch is a
small bash program written into the PRP's scratch directory, so it is supervised exactly like an
agent (own process group, log, stall detection) and costs no interpreter start-up of its own.
Block bodies and commit messages are separate files: nothing from the PRP is ever spliced into
the program's text.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ce.agents.base import Assessment, ExecutorJob
from ce.core.names import checkpoint_subject

_PROLOGUE = """\
# Written by ce for {prp_id}: run each phase's blocks, then commit the phase.
set -u
fail() {{ echo "[ce] {prp_id}: $1"; exit 1; }}
"""


class ScriptExecutor:
    name = "script"

    def preflight(self, repo_root: Path) -> None:
        """Needs only bash and git, which the orchestrator checks anyway."""

    def command(self, job: ExecutorJob) -> list[str]:
        folder = job.scratch / "script"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [_PROLOGUE.format(prp_id=job.prp.id)]
        if job.task.kind == "resolve-conflict" and job.task.conflict_with:
            # Scripts cannot resolve a real conflict: a clean merge is all they can make.
            target = shlex.quote(job.task.conflict_with)
            lines += [
                f"git merge --no-edit {target} || {{ git merge --abort; "
                "fail 'the script executor cannot resolve merge conflicts'; }"
            ]
            program = folder / "resolve.sh"
            program.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return ["bash", str(program)]
        for phase in job.prp.phases:
            if phase.number >= job.resume_from:
                lines += _phase_lines(job, folder, phase.number, phase.title, phase.blocks)
        program = folder / "run.sh"
        program.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return ["bash", str(program)]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        return Assessment()


def _phase_lines(
    job: ExecutorJob, folder: Path, number: int, title: str, blocks: tuple[str, ...]
) -> list[str]:
    message = folder / f"phase-{number}.msg"
    message.write_text(checkpoint_subject(job.prp.id, number, title) + "\n", encoding="utf-8")
    lines = []
    for index, body in enumerate(blocks, start=1):
        block = folder / f"phase-{number}-block-{index}.sh"
        block.write_text(body + "\n", encoding="utf-8")
        where = f"phase {number} block {index}/{len(blocks)}"
        lines += [
            f"echo {shlex.quote(f'[ce] {job.prp.id} {where}')}",
            f"bash -euo pipefail {shlex.quote(str(block))} "
            f'|| fail {shlex.quote(f"{where} failed with exit code")}" $?"',
        ]
    lines += [
        "git add --all && git commit --quiet --no-verify --allow-empty "
        f"-F {shlex.quote(str(message))} || fail {shlex.quote(f'commit of phase {number} failed')}",
        f"echo {shlex.quote(f'[ce] {job.prp.id}: committed phase {number} - {title}')}",
    ]
    return lines
