"""The codex preset against the real Codex CLI (pinned, under tests/.tools) and a scripted local
Responses API configured as its model provider: nothing leaves the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_kit import git, launch, make_job, subjects
from agent_tools import require_npm_binary
from ce.agents.codex import PACKAGE, CodexExecutor
from ce.agents.stream import estimate_cost
from ce.config import AgentConfig
from fake_openai import Failure, FakeOpenAI, Reply, rate_limited, shell


@pytest.fixture
def codex_bin() -> Path:
    return require_npm_binary("codex")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def codex_executor(binary: Path, **settings: object) -> CodexExecutor:
    return CodexExecutor(AgentConfig.model_validate({"binary": str(binary), **settings}))


def commit(message: str) -> Reply:
    return Reply(tools=[shell(f"git add -A && git commit -q -m '{message}'")])


def test_preflight_reads_the_version_and_accepts_the_flags(codex_bin: Path, tmp_path: Path) -> None:
    executor = codex_executor(codex_bin, skip_permissions=True)

    executor.preflight(tmp_path)

    assert executor.version == PACKAGE.pinned


def test_two_phases_committed_from_a_linked_worktree(
    codex_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-4.1.1", ["Core", "Docs"])
    script = {
        "PRP-4.1.1": [
            Reply(text="Phase 1.", tools=[shell("printf 'VALUE = 1\\n' > core.py")]),
            commit("PRP-4.1.1: Phase 1 - Core"),
            Reply(tools=[shell("printf '# Docs\\n' > docs.md")]),
            commit("PRP-4.1.1: Phase 2 - Docs"),
            Reply(tools=[shell(f'echo \'{{"status": "completed"}}\' > {job.result_path}')]),
        ]
    }
    executor = codex_executor(codex_bin, models={"sonnet": "gpt-5"})
    with FakeOpenAI(script) as api:
        api.codex_config(home)
        done = launch(executor, job, api.env(home))

    assert done.code == 0, done.output[-2000:]
    assert done.assessment.error is None, done.assessment.error
    assert subjects(job.worktree) == [
        "initial",
        "PRP-4.1.1: Phase 1 - Core",
        "PRP-4.1.1: Phase 2 - Docs",
    ]
    assert json.loads(job.result_path.read_text()) == {"status": "completed"}
    assessment = done.assessment
    assert assessment.session_id is not None
    assert (assessment.input_tokens, assessment.output_tokens) == (6000, 1200)
    assert assessment.cost_usd == estimate_cost("gpt-5", 6000, 1200)
    assert {seen.body["model"] for seen in api.seen} == {"gpt-5"}
    assert "Phase 1: Core" in api.requests_for("PRP-4.1.1")[0].text
    # Codex's own update checks went to the proxy and were refused: none reached the network.
    assert all(attempt.startswith("CONNECT ") for attempt in api.outbound)


def test_a_server_error_fails_the_turn(codex_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-4.1.2", ["Only"])
    script = {"PRP-4.1.2": [Failure(status=400, error_type="invalid_request", message="bad tool")]}
    with FakeOpenAI(script) as api:
        api.codex_config(home)
        done = launch(codex_executor(codex_bin), job, api.env(home))

    assert done.code != 0
    assert done.assessment.error is not None
    assert done.assessment.error.startswith("Codex turn failed: ")
    assert "bad tool" in done.assessment.error
    assert done.assessment.retry_after is None


def test_a_rate_limit_sets_retry_after(codex_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-4.1.3", ["Only"])
    with FakeOpenAI({"PRP-4.1.3": [rate_limited(retry_after=1)]}) as api:
        api.codex_config(home)
        done = launch(codex_executor(codex_bin), job, api.env(home))

    assert done.assessment.error is not None
    assert done.assessment.error.startswith("rate-limited: ")
    assert done.assessment.retry_after == 60.0


def test_the_sandbox_keeps_the_users_checkout_read_only(
    codex_bin: Path, tmp_path: Path, home: Path
) -> None:
    """Codex 0.169 reports a refused command in its JSON stream only sometimes (a fast failure
    can lose the race with its event), so `ce` fails the PRP on the refusals it sees; what
    protects the user's checkout is the sandbox itself."""
    job = make_job(tmp_path, "PRP-4.1.4", ["Only"])
    outside = job.repo_root / "README.md"  # the user's checkout, beside the worktree
    script = {
        "PRP-4.1.4": [
            Reply(tools=[shell(f"echo sneaky >> {outside}")]),
            Reply(tools=[shell("echo ok > ok.txt")]),
            commit("PRP-4.1.4: Phase 1 - Only"),
        ]
    }
    # The test's directories are all under /tmp, which the sandbox leaves writable by default.
    no_tmp = [
        *("-c", "sandbox_workspace_write.exclude_slash_tmp=true"),
        *("-c", "sandbox_workspace_write.exclude_tmpdir_env_var=true"),
    ]
    with FakeOpenAI(script) as api:
        api.codex_config(home)
        done = launch(codex_executor(codex_bin, extra_args=no_tmp), job, api.env(home))

    assert outside.read_text() == "test repo\n"
    refused = api.requests_for("PRP-4.1.4")[1].text
    assert "Read-only file system" in refused  # what the model was told
    error = done.assessment.error
    assert error is None or error.startswith("1 command(s) were refused by the Codex sandbox: ")
    assert subjects(job.worktree)[-1] == "PRP-4.1.4: Phase 1 - Only"


def test_a_stalled_thread_is_resumed_with_a_nudge(
    codex_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-4.1.5", ["One", "Two"])
    script = {
        "PRP-4.1.5": [
            Reply(tools=[shell("echo 1 > one.txt")]),
            commit("PRP-4.1.5: Phase 1 - One"),
            Reply(text="Thinking about phase 2."),  # the agent stops here
            Reply(tools=[shell("echo 2 > two.txt")]),
            commit("PRP-4.1.5: Phase 2 - Two"),
        ]
    }
    executor = codex_executor(codex_bin)
    with FakeOpenAI(script) as api:
        api.codex_config(home)
        first = launch(executor, job, api.env(home))
        thread = first.assessment.session_id
        assert thread is not None
        later = make_job(tmp_path, "PRP-4.1.5", ["One", "Two"], resume_from=2)
        argv = executor.nudge_command(later, thread)
        assert argv is not None
        second = launch(executor, later, api.env(home), argv=argv)

    assert second.assessment.error is None, second.output[-2000:]
    assert second.assessment.session_id == thread
    assert subjects(job.worktree)[1:] == ["PRP-4.1.5: Phase 1 - One", "PRP-4.1.5: Phase 2 - Two"]
    resumed = api.requests_for("PRP-4.1.5")[3]
    assert resumed.step == 3
    assert "You have stopped making progress on PRP-4.1.5" in resumed.text
    assert git(job.worktree, "status", "--porcelain") == ""
