"""The gemini preset against the real Gemini CLI (pinned, under tests/.tools) and a scripted local
Gemini API (`GOOGLE_GEMINI_BASE_URL`): nothing leaves the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_kit import git, launch, make_job, subjects
from agent_tools import require_npm_binary
from ce.agents.gemini import PACKAGE, SESSION_FILE, GeminiExecutor
from ce.agents.stream import estimate_cost
from ce.config import AgentConfig
from fake_gemini import Failure, FakeGemini, Reply, rate_limited, shell, write

MODELS = {"sonnet": "gemini-2.5-pro", "haiku": "gemini-2.5-flash"}


@pytest.fixture
def gemini_bin() -> Path:
    return require_npm_binary("gemini")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def gemini_executor(binary: Path, **settings: object) -> GeminiExecutor:
    return GeminiExecutor(
        AgentConfig.model_validate({"binary": str(binary), "models": MODELS, **settings})
    )


def commit(message: str) -> Reply:
    return Reply(tools=[shell(f"git add -A && git commit -q -m '{message}'")])


def test_preflight_reads_the_version_and_accepts_the_flags(
    gemini_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_CLI_NO_RELAUNCH", "true")  # one Node start per probe, not two
    executor = gemini_executor(gemini_bin)

    executor.preflight(tmp_path)

    assert executor.version == PACKAGE.pinned


def test_two_phases_committed_with_tokens_cost_and_session(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    validation = ["python3 -m compileall -q ."]
    job = make_job(tmp_path, "PRP-5.2.1", ["Core", "Docs"], validation=validation)
    script = {
        "PRP-5.2.1": [
            Reply(
                text="Phase 1.",
                tools=[write("core.py", "VALUE = 1\n")],
                cached_tokens=400,
                thinking_tokens=300,
            ),
            commit("PRP-5.2.1: Phase 1 - Core"),
            Reply(tools=[write("docs.md", "# Docs\n"), shell("python3 -m compileall -q .")]),
            commit("PRP-5.2.1: Phase 2 - Docs"),
            Reply(tools=[write(str(job.result_path), json.dumps({"status": "completed"}))]),
        ]
    }
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin), job, api.env(home))

    assert done.code == 0, done.output[-2000:]
    assert done.assessment.error is None, done.assessment.error
    assert subjects(job.worktree) == [
        "initial",
        "PRP-5.2.1: Phase 1 - Core",
        "PRP-5.2.1: Phase 2 - Docs",
    ]
    assert (job.worktree / "core.py").read_text() == "VALUE = 1\n"
    assert (job.worktree / "__pycache__").is_dir()  # the validation command ran
    assert json.loads(job.result_path.read_text()) == {"status": "completed"}
    assessment = done.assessment
    assert assessment.session_id == (job.scratch / SESSION_FILE).read_text().strip()
    # Six model turns (the last one the server's closing text) of 1000 in, 200 out each, and
    # the first one's thinking (billed as output) and cached input (billed at a quarter).
    assert (assessment.input_tokens, assessment.output_tokens) == (6000, 1200 + 300)
    assert assessment.cost_usd == estimate_cost("gemini-2.5-pro", 6000 - 300, 1500)
    assert {seen.path for seen in api.seen} == {
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    }
    assert "Phase 1: Core" in api.requests_for("PRP-5.2.1")[0].text
    assert (api.outbound, api.refused, api.side) == ([], [], [])


def test_the_clis_own_model_routing_and_statistics_stay_on_the_machine(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    """No tier mapped: the CLI's router asks a small model (`:generateContent`, a JSON schema)
    which model to use, then talks to that one; a model `ce` cannot price leaves the cost
    unknown rather than $0. Usage statistics on: the CLI sends them through the proxy."""
    job = make_job(tmp_path, "PRP-5.2.2", ["Only"])
    script = {"PRP-5.2.2": [Reply(tools=[write("a.txt", "a\n")]), commit("PRP-5.2.2: Phase 1")]}
    executor = GeminiExecutor(AgentConfig(binary=str(gemini_bin)))
    with FakeGemini(script) as api:
        api.settings(home, usage_statistics=True)
        done = launch(executor, job, api.env(home))

    assert done.assessment.error is None, done.output[-2000:]
    assert subjects(job.worktree)[-1] == "PRP-5.2.2: Phase 1"
    assert [side.path.endswith(":generateContent") for side in api.side] == [True]
    assert "--model" not in executor.command(job)
    assert done.assessment.input_tokens == 3000 + 100  # the turns and the router's question
    assert done.assessment.cost_usd is None
    # Its usage statistics went to the proxy, which refused them: nothing left the machine.
    assert api.outbound and set(api.outbound) == {"CONNECT play.googleapis.com:443"}
    assert api.refused == []


def test_a_server_error_is_reported(gemini_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-5.2.3", ["Only"])
    script = {"PRP-5.2.3": [Failure(status=500, message="the scripted server broke")]}
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin), job, api.env(home))

    assert done.code != 0
    error = done.assessment.error
    assert error is not None
    assert error.startswith("Gemini CLI reported an error: [API Error: ")
    assert '"code":500' in error and "the scripted server broke" in error
    assert done.assessment.retry_after is None
    assert len(api.requests_for("PRP-5.2.3")) == 1  # maxAttempts = 1: no backoff


def test_a_missing_api_key_is_reported_in_the_clis_words(
    gemini_bin: Path, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(tmp_path, "PRP-5.2.10", ["Only"])
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with FakeGemini({"PRP-5.2.10": [commit("PRP-5.2.10: Phase 1 - Only")]}) as api:
        api.settings(home)
        env = {k: v for k, v in api.env(home).items() if k != "GEMINI_API_KEY"}
        done = launch(gemini_executor(gemini_bin), job, env)

    assert done.code != 0
    assert done.assessment.error == (
        f"Gemini CLI ended without a result event (exit code {done.code}): When using Gemini "
        "API, you must specify the GEMINI_API_KEY environment variable. Update your environment "
        "and try again (no reload needed if using .env)!"
    )
    assert api.seen == []


def test_a_rate_limit_sets_retry_after(gemini_bin: Path, tmp_path: Path, home: Path) -> None:
    job = make_job(tmp_path, "PRP-5.2.4", ["Only"])
    with FakeGemini({"PRP-5.2.4": [rate_limited(retry_after=7)]}) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin), job, api.env(home))

    assert done.code != 0
    error = done.assessment.error
    assert error is not None and error.startswith("rate-limited: Gemini CLI reported an error: ")
    assert "Suggested retry after 7s" in error  # the CLI reads the API's RetryInfo
    assert done.assessment.retry_after == 7.0


def test_a_command_outside_the_allow_list_is_denied_and_not_run(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-5.2.5", ["Only"])
    script = {
        "PRP-5.2.5": [
            Reply(tools=[shell("touch denied.txt")]),
            Reply(tools=[shell("git add -A && git push origin work")]),
            Reply(tools=[write("a.txt", "a\n")]),
            commit("PRP-5.2.5: Phase 1 - Only"),
        ]
    }
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin), job, api.env(home))

    assert done.code == 0
    assert not (job.worktree / "denied.txt").exists()  # the CLI really did not run it
    assert subjects(job.worktree)[-1] == "PRP-5.2.5: Phase 1 - Only"
    assert done.assessment.error == (
        "2 tool call(s) were denied by policy: run_shell_command(touch denied.txt); "
        "run_shell_command(git add -A && git push origin work): ce merges the branch itself: "
        "do not push, merge, rebase or switch. Allow what the PRP needs with allowed_tools "
        "under [executor.gemini] in .ce/config.toml"
    )
    told = api.requests_for("PRP-5.2.5")[1].text
    assert "Tool execution denied by policy." in told  # what the model was told


def test_configured_allowed_tools_prevent_the_denial(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-5.2.6", ["Only"])
    script = {"PRP-5.2.6": [Reply(tools=[shell("touch allowed.txt")])]}
    executor = gemini_executor(gemini_bin, allowed_tools=["Bash(touch:*)"])
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(executor, job, api.env(home))

    assert done.assessment.error is None, done.assessment.error
    assert (job.worktree / "allowed.txt").exists()


def test_not_even_yolo_lets_a_headless_agent_edit_a_build_file(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    """The CLI's own build-file protection, outside the policy engine's rules: a PRP that must
    edit pyproject.toml cannot be done by this CLI headless, and the reason says so."""
    job = make_job(tmp_path, "PRP-5.2.9", ["Only"])
    script = {"PRP-5.2.9": [Reply(tools=[write("pyproject.toml", "[project]\n")])]}
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin, skip_permissions=True), job, api.env(home))

    assert not (job.worktree / "pyproject.toml").exists()
    error = done.assessment.error
    assert error is not None
    assert error.startswith(
        f"1 tool call(s) were denied by policy: write_file({job.worktree}/pyproject.toml): "
        "Modifying build configuration files requires explicit user confirmation. "
        "Gemini CLI 0.61.0 never lets a headless agent edit a build file"
    )


def test_an_agent_that_ends_without_committing_claims_success_only(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    """Its claim is not judged here: the engine fails the PRP because git shows no commit."""
    job = make_job(tmp_path, "PRP-5.2.7", ["Only"])
    script = {"PRP-5.2.7": [Reply(tools=[write("a.txt", "a\n")]), Reply(text="All done!")]}
    with FakeGemini(script) as api:
        api.settings(home)
        done = launch(gemini_executor(gemini_bin), job, api.env(home))

    assert done.code == 0
    assert done.assessment.error is None
    assert subjects(job.worktree) == ["initial"]
    assert git(job.worktree, "status", "--porcelain") == "?? a.txt"


def test_a_stalled_session_is_resumed_with_a_nudge(
    gemini_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-5.2.8", ["One", "Two"])
    script = {
        "PRP-5.2.8": [
            Reply(tools=[write("one.txt", "1\n")]),
            commit("PRP-5.2.8: Phase 1 - One"),
            Reply(text="Let me think about phase 2 for a while."),  # the agent stops here
            Reply(tools=[write("two.txt", "2\n")]),
            commit("PRP-5.2.8: Phase 2 - Two"),
        ]
    }
    executor = gemini_executor(gemini_bin)
    with FakeGemini(script) as api:
        api.settings(home)
        first = launch(executor, job, api.env(home))
        session = first.assessment.session_id
        assert session is not None
        later = make_job(tmp_path, "PRP-5.2.8", ["One", "Two"], resume_from=2)
        argv = executor.nudge_command(later, session)
        assert argv is not None
        second = launch(executor, later, api.env(home), argv=argv)

    assert second.assessment.error is None, second.output[-2000:]
    assert second.assessment.session_id == session
    assert subjects(job.worktree)[1:] == ["PRP-5.2.8: Phase 1 - One", "PRP-5.2.8: Phase 2 - Two"]
    resumed = api.requests_for("PRP-5.2.8")[3]
    # The resumed conversation carries the first launch's turns and then the nudge.
    assert resumed.step == 3
    assert "You have stopped making progress on PRP-5.2.8" in resumed.text
    assert "phases still have no checkpoint commit: 2 " in resumed.text
