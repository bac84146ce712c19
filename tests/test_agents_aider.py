"""The aider preset, fast and without aider: the argv of each aider run, the launch program (real
bash and git) around a stand-in `aider` script that edits and prints aider's cost lines, and the
assessment of aider's output as data. The real aider runs in test_agents_aider_cli.py and
test_agents_aider_batch.py."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from agent_kit import git, launch, make_job, subjects
from ce.agents.aider import QUIET, AiderExecutor, assess_output
from ce.config import AgentConfig
from ce.core.errors import CeError

# Writes phase-N.txt for the phase its message names, touches aider's repo-map cache, prints
# the files it was given (after the message, as ce passes them) and aider's usage line;
# `--version` and `--help` answer like aider 0.86.2.
FAKE_AIDER = r"""#!/usr/bin/env bash
case "${1:-}" in
  --version) echo "aider 0.86.2"; exit 0 ;;
  --help) echo "usage: aider @@FLAGS@@"; exit 0 ;;
esac
message=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--message-file" ]; then message="$2"; shift 2; break; fi
  shift
done
phase=$(sed -n 's/^Implement phase \([0-9]*\) of.*/\1/p' "$message")
echo "files in the chat: $*"
if [ "$phase" = "${SKIP_PHASE:-}" ]; then echo "I see nothing to change."; exit 0; fi
echo "phase $phase" > "phase-$phase.txt"
mkdir -p .aider.tags.cache.v4 && echo cache > .aider.tags.cache.v4/cache.db
echo "Tokens: 2.5k sent, 1.2k cache write, 150 received. Cost: \$0.02 message, \$0.02 session."
"""


@pytest.fixture
def fake_aider(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "aider"
    path.parent.mkdir()
    flags = " ".join([*QUIET, "--chat-history-file", "--input-history-file", "--read", "--model"])
    path.write_text(FAKE_AIDER.replace("@@FLAGS@@", flags))
    path.chmod(0o755)
    return path


def executor(binary: Path | str = "aider", **settings: object) -> AiderExecutor:
    return AiderExecutor(AgentConfig.model_validate({"binary": str(binary), **settings}))


def test_each_aider_run(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-6.1.1", ["One"], model="opus")
    folder = job.scratch / "aider"

    argv = executor(extra_args=["--openai-api-base", "http://localhost:1"]).aider_argv(job)

    assert argv == [
        "aider",
        *QUIET,
        "--chat-history-file",
        str(folder / "chat-history.md"),
        "--input-history-file",
        str(folder / "input-history"),
        "--read",
        str(job.prp_path),
        "--model",
        "opus",
        "--openai-api-base",
        "http://localhost:1",
    ]


def test_the_program_runs_aider_then_commits_each_phase(fake_aider: Path, tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-6.1.1", ["One", "Two", "Three"], resume_from=2)
    aider = executor(fake_aider)

    argv = aider.command(job)
    done = launch(aider, job, {})

    assert argv[0] == "bash"
    program = Path(argv[1]).read_text()
    assert shlex.join([*aider.aider_argv(job), "--message-file"]) in program
    assert done.code == 0, done.output
    assert subjects(job.worktree)[1:] == ["PRP-6.1.1: Phase 2 - Two", "PRP-6.1.1: Phase 3 - Three"]
    assert not (job.worktree / "phase-1.txt").exists()
    assert (job.worktree / "phase-3.txt").read_text() == "phase 3\n"
    assert git(job.worktree, "status", "--porcelain", "--ignored") == ""  # cache removed
    assert "aider.tags" not in git(job.worktree, "log", "--name-only", "--format=")
    message = (job.scratch / "aider" / "phase-2.md").read_text()
    assert message.startswith('Implement phase 2 of PRP-6.1.1 (PRP-6.1.1 work): "Two".')
    assert done.assessment.error is None
    assert (done.assessment.cost_usd, done.assessment.input_tokens) == (0.04, 5000)
    assert done.assessment.output_tokens == 300


def test_declared_files_are_given_to_aider_once_they_exist(
    fake_aider: Path, tmp_path: Path
) -> None:
    job = make_job(tmp_path, "PRP-6.1.4", ["One", "Two"])
    job = replace(job, prp=replace(job.prp, files=("seed.txt", "phase-1.txt", "src/*.py")))
    (job.worktree / "seed.txt").write_text("seed\n")

    done = launch(executor(fake_aider), job, {})

    assert done.code == 0, done.output
    assert "files in the chat: seed.txt\n" in done.output  # phase 1: phase-1.txt is not yet
    assert "files in the chat: seed.txt phase-1.txt\n" in done.output  # phase 2


def test_a_phase_without_changes_fails_the_launch(fake_aider: Path, tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-6.1.2", ["One", "Two"])

    done = launch(executor(fake_aider), job, {"SKIP_PHASE": "2"})

    assert done.code == 1
    assert "[ce] PRP-6.1.2 failed: aider changed nothing in phase 2" in done.output
    assert done.assessment.error == "aider changed nothing in phase 2"
    assert subjects(job.worktree)[1:] == ["PRP-6.1.2: Phase 1 - One"]
    assert git(job.worktree, "status", "--porcelain", "--ignored") == ""  # cache removed


def test_preflight(fake_aider: Path, tmp_path: Path) -> None:
    checked = executor(fake_aider)
    checked.preflight(tmp_path)
    assert checked.version == "0.86.2"

    with pytest.raises(CeError, match=r"python -m pip install aider-chat==0\.86\.2"):
        executor(tmp_path / "nope").preflight(tmp_path)


PHASE_1 = "[ce] PRP-6.1.3 phase 1: aider\n"
NOTHING = "[ce] PRP-6.1.3 failed: aider changed nothing in phase 1\n"
LIMITED = "litellm.RateLimitError: AnthropicException - rate limit exceeded\nRetrying in 0.2s\n"


@pytest.mark.parametrize(
    ("output", "exit_code", "error", "retry_after"),
    [
        (PHASE_1 + LIMITED + "Applied edit to a.txt\n", 0, None, None),  # retried, succeeded
        (
            PHASE_1 + LIMITED + NOTHING,
            1,
            "rate-limited: aider changed nothing in phase 1: litellm.RateLimitError: "
            "AnthropicException - rate limit exceeded; retry in 60s",
            60.0,
        ),
        (LIMITED + PHASE_1 + NOTHING, 1, "aider changed nothing in phase 1", None),  # not its phase
        (PHASE_1 + "No rate limit here.\n" + NOTHING, 1, "aider changed nothing in phase 1", None),
        (
            PHASE_1 + "litellm.BadRequestError: OpenAIException - too long\n" + NOTHING,
            1,
            "aider changed nothing in phase 1: litellm.BadRequestError: OpenAIException - too long",
            None,
        ),
        (PHASE_1, 143, None, None),  # stopped from outside: the exit code tells
    ],
)
def test_assess_reads_why_a_launch_failed(
    output: str, exit_code: int, error: str | None, retry_after: float | None
) -> None:
    found = assess_output(output, exit_code)

    assert (found.error, found.retry_after) == (error, retry_after)


def test_assess_reads_aiders_usage_lines() -> None:
    output = (
        "Tokens: 1M sent, 2k received. Cost: $3.00 message, $3.00 session.\n"
        "Tokens: 1.9k sent, 1.2k cache write, 20 received.\nCost: $0.0061 message, $3.01 session."
    )

    found = assess_output(output, 0)

    assert (found.input_tokens, found.output_tokens, found.cost_usd) == (1_001_900, 2020, 3.0061)
