"""The claude preset against the real Claude Code CLI (pinned, under tests/.tools) and a
scripted local Messages API: nothing leaves the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_kit import git, launch, make_job, subjects
from agent_tools import require_npm_binary
from ce.agents.claude import PACKAGE, SESSION_FILE, ClaudeExecutor
from ce.config import AgentConfig
from fake_anthropic import Failure, FakeAnthropic, Reply, bash, commit, rate_limited, write


@pytest.fixture
def claude_bin() -> Path:
    return require_npm_binary("claude")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def claude_executor(binary: Path, **settings: object) -> ClaudeExecutor:
    return ClaudeExecutor(AgentConfig.model_validate({"binary": str(binary), **settings}))


def test_preflight_reads_the_version_and_accepts_the_flags(
    claude_bin: Path, tmp_path: Path
) -> None:
    executor = claude_executor(claude_bin, max_budget_usd=2.5)

    executor.preflight(tmp_path)

    assert executor.version == PACKAGE.pinned


def test_two_phases_committed_with_cost_and_session(
    claude_bin: Path, tmp_path: Path, home: Path
) -> None:
    validation = ["python3 -m compileall -q ."]
    job = make_job(tmp_path, "PRP-3.1.1", ["Core", "Docs"], validation=validation)
    script = {
        "PRP-3.1.1": [
            Reply(text="Phase 1.", tools=[write("core.py", "VALUE = 1\n")]),
            Reply(tools=commit("PRP-3.1.1: Phase 1 - Core")),
            Reply(tools=[write("docs.md", "# Docs\n"), bash("python3 -m compileall -q .")]),
            Reply(tools=commit("PRP-3.1.1: Phase 2 - Docs")),
            Reply(tools=[write(str(job.result_path), json.dumps({"status": "completed"}))]),
        ]
    }
    executor = claude_executor(claude_bin, max_budget_usd=5)
    with FakeAnthropic(script) as api:
        done = launch(executor, job, api.env(home))

    assert done.code == 0, done.output[-2000:]
    assert done.assessment.error is None
    assert subjects(job.worktree) == [
        "initial",
        "PRP-3.1.1: Phase 1 - Core",
        "PRP-3.1.1: Phase 2 - Docs",
    ]
    assert (job.worktree / "core.py").read_text() == "VALUE = 1\n"
    assert json.loads(job.result_path.read_text()) == {"status": "completed"}
    assert done.assessment.session_id == (job.scratch / SESSION_FILE).read_text().strip()
    assert done.assessment.cost_usd is not None and done.assessment.cost_usd > 0
    assert done.assessment.input_tokens and done.assessment.output_tokens
    first = api.requests_for("PRP-3.1.1")[0]
    assert "claude-sonnet" in first.body["model"]
    assert "Phase 1: Core" in first.text  # the rendered prompt reached the model
    assert api.outbound == []


def test_a_server_error_is_reported(claude_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-3.1.2", ["Only"])
    script = {"PRP-3.1.2": [Failure(status=500, message="the scripted server broke")]}
    with FakeAnthropic(script) as api:
        done = launch(claude_executor(claude_bin), job, api.env(home))

    assert done.code != 0
    assert done.assessment.error is not None
    assert "API error 500" in done.assessment.error
    assert "the scripted server broke" in done.assessment.error
    assert done.assessment.retry_after is None


def test_a_permission_denial_is_a_failure(claude_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-3.1.3", ["Only"])
    script = {
        "PRP-3.1.3": [
            Reply(tools=[write("a.txt", "a\n")]),
            Reply(tools=[bash("curl -s https://example.invalid/install.sh")]),
            Reply(tools=commit("PRP-3.1.3: Phase 1 - Only")),
        ]
    }
    with FakeAnthropic(script) as api:
        done = launch(claude_executor(claude_bin), job, api.env(home))

    assert done.code == 0
    error = done.assessment.error
    assert error is not None
    assert "1 tool call(s) were denied permission: Bash(curl -s https://example.invalid" in error
    assert "allowed_tools under [executor.claude]" in error


def test_configured_allowed_tools_prevent_the_denial(
    claude_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-3.1.4", ["Only"])
    script = {"PRP-3.1.4": [Reply(tools=[bash("echo hello > hello.txt")])]}
    executor = claude_executor(claude_bin, allowed_tools=["Bash(echo:*)"])
    with FakeAnthropic(script) as api:
        done = launch(executor, job, api.env(home))

    assert done.assessment.error is None, done.assessment.error
    assert (job.worktree / "hello.txt").read_text() == "hello\n"


def test_an_agent_that_ends_without_committing_claims_success_only(
    claude_bin: Path, tmp_path: Path, home: Path
) -> None:
    """Its claim is not judged here: the engine fails the PRP because git shows no commit."""
    job = make_job(tmp_path, "PRP-3.1.5", ["Only"])
    script = {"PRP-3.1.5": [Reply(tools=[write("a.txt", "a\n")]), Reply(text="All done!")]}
    with FakeAnthropic(script) as api:
        done = launch(claude_executor(claude_bin), job, api.env(home))

    assert done.code == 0
    assert done.assessment.error is None
    assert subjects(job.worktree) == ["initial"]
    assert git(job.worktree, "status", "--porcelain") == "?? a.txt"


def test_a_rate_limit_sets_retry_after(claude_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-3.1.6", ["Only"])
    script = {"PRP-3.1.6": [rate_limited(retry_after=1)]}
    with FakeAnthropic(script) as api:
        # One retry, so the CLI reports the server's retry-after in an api_retry event.
        retry_once = {"CLAUDE_CODE_MAX_RETRIES": "1"}
        done = launch(claude_executor(claude_bin), job, {**api.env(home), **retry_once})

    assert done.assessment.error is not None
    assert done.assessment.error.startswith("rate-limited by the API")
    assert done.assessment.retry_after is not None
    assert 1 <= done.assessment.retry_after < 30


def test_a_stalled_session_is_resumed_with_a_nudge(
    claude_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-3.1.7", ["One", "Two"])
    script = {
        "PRP-3.1.7": [
            Reply(tools=[write("one.txt", "1\n")]),
            Reply(tools=commit("PRP-3.1.7: Phase 1 - One")),
            Reply(text="Let me think about phase 2 for a while."),  # the agent stops here
            Reply(tools=[write("two.txt", "2\n")]),
            Reply(tools=commit("PRP-3.1.7: Phase 2 - Two")),
        ]
    }
    executor = claude_executor(claude_bin)
    with FakeAnthropic(script) as api:
        first = launch(executor, job, api.env(home))
        session = first.assessment.session_id
        assert session is not None
        later = make_job(tmp_path, "PRP-3.1.7", ["One", "Two"], resume_from=2)
        argv = executor.nudge_command(later, session)
        assert argv is not None
        second = launch(executor, later, api.env(home), argv=argv)

    assert second.assessment.error is None, second.assessment.error
    assert second.assessment.session_id == session
    assert subjects(job.worktree)[1:] == ["PRP-3.1.7: Phase 1 - One", "PRP-3.1.7: Phase 2 - Two"]
    resumed = api.requests_for("PRP-3.1.7")[3]
    # The resumed conversation carries the first launch's turns and then the nudge.
    assert resumed.step == 3
    assert "You have stopped making progress on PRP-3.1.7" in resumed.text
    assert "phases still have no checkpoint commit: 2 " in resumed.text
