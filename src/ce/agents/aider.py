"""The `aider` preset: aider does one phase per run, `ce` commits each phase.

Aider answers one message and exits; it has no loop of its own to work through phases and
commit them in `ce`'s grammar. So a launch is a small bash program in the PRP's scratch
directory, like the script executor's: for each phase left,

    aider --yes-always --no-auto-commits ... --read <PRP> --message-file phase-N.md [files]
    git add --all -- . ':(exclude).aider*' && git commit -F phase-N.msg

A phase that changes nothing fails the launch (no empty checkpoint pretends it was done), and
the reason is the launch's error. Aider exits 0 when its model request fails (it retries rate
limits and server errors for a minute, then gives up): its `litellm.<Kind>Error: ...` line is
the reason then. A declared file is given to aider only once it exists (aider would create it
empty). Aider's own files go to the scratch directory, except its repo-map cache, which is kept
out of the commits and removed when the program exits. Bash, aider and git share one process
group, so stopping the launch stops them all.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from pathlib import Path
from string import Template

from ce.agents import preset, stream
from ce.agents.base import Assessment, ExecutorJob
from ce.core.names import checkpoint_subject
from ce.core.paths import is_glob
from ce.core.vocab import MODEL_TIERS

PACKAGE = preset.CliPackage(
    agent="Aider",
    preset="aider",
    binary="aider",
    installer="python -m pip install",
    package="aider-chat",
    pinned="0.86.2",
)
MODELS: dict[str, str] = {tier: tier for tier in MODEL_TIERS}  # aider's own aliases
QUIET = (
    "--yes-always",
    "--no-auto-commits",
    "--no-dirty-commits",
    "--no-gitignore",
    "--no-check-update",
    "--no-show-release-notes",
    "--analytics-disable",
    "--no-pretty",
    "--no-fancy-input",
    "--no-detect-urls",
    "--no-suggest-shell-commands",
)
FLAGS = (*QUIET, "--chat-history-file", "--input-history-file", "--read", "--model")
PHASE_TEMPLATE = Path("templates") / "aider-phase.md"
DEFAULT_RETRY_SECONDS = 60.0
_PROLOGUE = """\
# Written by ce for {prp_id}: aider does each phase, then ce commits it.
set -u
trap 'rm -rf -- .aider.tags.cache.v*' EXIT  # aider's repo-map cache: never work to keep
fail() {{ echo "[ce] {prp_id} failed: $1"; exit 1; }}
"""
_FAILED = re.compile(r"^\[ce\] \S+ failed: (.+)$", re.MULTILINE)
_API_ERROR = re.compile(r"^litellm\.\w+Error: .+$", re.MULTILINE)
_PHASE_START = re.compile(r"^\[ce\] \S+ phase \d+: aider$", re.MULTILINE)
_COST = re.compile(r"Cost: \$(\d+(?:\.\d+)?) message")
_TOKENS = re.compile(
    r"Tokens: ([\d.]+)([kM]?) sent(?:, [\d.]+[kM]? cache \w+)*, ([\d.]+)([kM]?) received"
)
_RATE_LIMIT = re.compile(r"RateLimitError|rate.?limit|\b429\b", re.IGNORECASE)  # in its error
_MULTIPLIER = {"": 1, "k": 1_000, "M": 1_000_000}


class AiderExecutor(preset.AgentPreset):
    name = "aider"
    package = PACKAGE

    def flags(self) -> list[str]:
        return list(FLAGS)

    def command(self, job: ExecutorJob) -> list[str]:
        folder = job.scratch / "aider"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [_PROLOGUE.format(prp_id=job.prp.id)]
        for phase in job.prp.phases:
            if phase.number >= job.resume_from:
                lines += self._phase(job, folder, phase.number, phase.title)
        program = folder / "run.sh"
        program.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return ["bash", str(program)]

    def aider_argv(self, job: ExecutorJob) -> list[str]:
        """One aider run, without its message."""
        folder = job.scratch / "aider"
        argv = [self.binary, *QUIET]
        argv += ["--chat-history-file", str(folder / "chat-history.md")]
        argv += ["--input-history-file", str(folder / "input-history")]
        argv += ["--read", str(job.prp_path)]
        model = preset.model_name(job, self.config, MODELS)
        if model:
            argv += ["--model", model]
        return [*argv, *self.config.extra_args]

    def _phase(self, job: ExecutorJob, folder: Path, number: int, title: str) -> list[str]:
        message = folder / f"phase-{number}.md"
        message.write_text(phase_message(job, number, title), encoding="utf-8")
        checkpoint = folder / f"phase-{number}.msg"
        subject = checkpoint_subject(job.prp.id, number, title)
        checkpoint.write_text(f"{subject}\n", encoding="utf-8")
        run = shlex.join([*self.aider_argv(job), "--message-file", str(message)])
        return [
            f"echo {shlex.quote(f'[ce] {job.prp.id} phase {number}: aider')}",
            _chat_files(job),
            # The `+` form: bash before 4.4 (macOS's 3.2) calls an empty array unset.
            f'{run} ${{files[@]+"${{files[@]}}"}} '
            f'|| fail "aider exited with code $? in phase {number}"',
            "git add --all -- . ':(exclude).aider*' "
            f'|| fail "git add exited with code $? after phase {number}"',
            f"git diff --cached --quiet && fail 'aider changed nothing in phase {number}'",
            f"git commit --quiet --no-verify -F {shlex.quote(str(checkpoint))} "
            f'|| fail "git commit exited with code $? after phase {number}"',
            f"echo {shlex.quote(f'[ce] {job.prp.id}: committed phase {number} - {title}')}",
        ]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        return assess_output(output, exit_code)


def _chat_files(job: ExecutorJob) -> str:
    """Bash setting `files` to the declared files that exist when the phase starts: aider edits
    only the files in its chat, and creates an empty file for a name it is given that does not
    exist (a phase that changed nothing would then commit it). New files it creates itself."""
    declared = " ".join(shlex.quote(f) for f in job.prp.files if not is_glob(f))
    return f'files=(); for f in {declared}; do [ -e "$f" ] && files+=("$f"); done'


def phase_message(job: ExecutorJob, number: int, title: str) -> str:
    override = job.repo_root / ".ce" / PHASE_TEMPLATE
    path = override if override.is_file() else Path(__file__).parent / PHASE_TEMPLATE
    validation = "\n".join(f"- `{cmd}`" for cmd in job.validation_commands) or "- (none)"
    return Template(path.read_text(encoding="utf-8")).safe_substitute(
        prp_id=job.prp.id,
        prp_title=job.prp.title,
        prp_path=str(job.prp_path),
        number=str(number),
        phase_title=title,
        validation_commands=validation,
    )


def assess_output(output: str, exit_code: int) -> Assessment:
    """Cost and tokens from aider's "Tokens: ... Cost: ..." lines; when the launch failed, why:
    the program's reason, with aider's model error of that phase if it printed one (a request
    that failed and was retried with success is no failure)."""
    found = _usage(output)
    reasons = _FAILED.findall(output) if exit_code != 0 else []
    if not reasons:
        return found  # succeeded, or stopped from outside (the exit code says it)
    starts = list(_PHASE_START.finditer(output))
    errors = _API_ERROR.findall(output, starts[-1].end() if starts else 0)
    error = reasons[-1].strip() + (f": {errors[-1].strip()}" if errors else "")
    if errors and _RATE_LIMIT.search(errors[-1]):
        error = f"rate-limited: {stream.short(error, 200)}; retry in {DEFAULT_RETRY_SECONDS:.0f}s"
        return replace(found, error=error, retry_after=DEFAULT_RETRY_SECONDS)
    return replace(found, error=stream.short(error, 300))


def _usage(output: str) -> Assessment:
    costs = [float(c) for c in _COST.findall(output)]
    sent = received = 0
    for amount, unit, out_amount, out_unit in _TOKENS.findall(output):
        sent += int(float(amount) * _MULTIPLIER[unit])
        received += int(float(out_amount) * _MULTIPLIER[out_unit])
    return Assessment(
        cost_usd=round(sum(costs), 6) if costs else None,
        input_tokens=sent if sent or received else None,
        output_tokens=received if sent or received else None,
    )
