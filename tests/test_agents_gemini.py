"""The gemini preset as data: exactly what `ce` would run, the policy it writes, and how it reads
`--output-format stream-json`. The events here are the pinned CLI's own, as the real Gemini CLI
emits them in test_agents_gemini_cli.py and test_agents_gemini_batch.py."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent_kit import make_job
from ce.agents.base import Assessment
from ce.agents.gemini import (
    DENIED_COMMANDS,
    GENERIC_DENIAL,
    POLICY_FILE,
    SESSION_FILE,
    GeminiExecutor,
    allowed_commands,
    assess_stream,
)
from ce.agents.stream import Event, estimate_cost
from ce.config import AgentConfig
from ce.core.errors import CeError


def executor(**settings: object) -> GeminiExecutor:
    return GeminiExecutor(AgentConfig.model_validate({"binary": "gemini", **settings}))


def result(status: str = "success", **fields: object) -> Event:
    stats = {"input_tokens": 300, "output_tokens": 30, "models": {"gemini-2.5-pro": {}}}
    stats["models"] = {"gemini-2.5-pro": {"input_tokens": 300, "output_tokens": 30}}
    return {"type": "result", "status": status, "stats": stats, **fields}


def test_default_command_and_policy(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-5.1.1", ["One"], validation=["pytest -q"])

    argv = executor().command(job)

    policy = job.scratch / POLICY_FILE
    assert argv == [
        "gemini",
        "--output-format",
        "stream-json",
        "--approval-mode",
        "auto_edit",
        "--skip-trust",
        "--policy",
        str(policy),
        "--include-directories",
        str(job.scratch),
        "--session-id",
        (job.scratch / SESSION_FILE).read_text().strip(),
        "--prompt",
        job.prompt_path.read_text(),
    ]
    rules = tomllib.loads(policy.read_text())["rule"]
    assert [rule["toolName"] for rule in rules] == ["run_shell_command"] * 2
    assert rules[0]["decision"] == "allow"
    assert rules[0]["commandPrefix"][:2] == ["git add", "git commit"]
    assert rules[0]["commandPrefix"][-1] == "pytest -q"
    assert rules[1] == {
        "toolName": "run_shell_command",
        "commandPrefix": list(DENIED_COMMANDS),
        "decision": "deny",
        "priority": 900,
        "denyMessage": "ce merges the branch itself: do not push, merge, rebase or switch.",
    }
    assert rules[1]["priority"] > rules[0]["priority"]


def test_configured_command(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-5.1.1", ["One"], model="haiku")

    argv = executor(models={"haiku": "gemini-2.5-flash"}, extra_args=["--debug"]).command(job)
    yolo = executor(skip_permissions=True).command(job)

    assert argv[argv.index("--model") : argv.index("--model") + 3] == [
        "--model",
        "gemini-2.5-flash",
        "--debug",
    ]
    assert yolo[3:6] == ["--approval-mode", "yolo", "--skip-trust"]
    assert "--policy" not in yolo
    assert "--model" not in yolo  # no mapping: the CLI's own model routing


def test_allowed_tools_accept_claude_rules_and_prefixes() -> None:
    allowed = allowed_commands(["make test"], ["Bash(npm test:*)", "cargo build", "Bash(ls)"])

    assert allowed[-4:] == ["make test", "npm test", "cargo build", "ls"]


def test_nudge_resumes_the_session(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-5.1.1", ["One", "Two"], resume_from=2)

    argv = executor().nudge_command(job, "abc-123")

    assert argv is not None
    assert argv[-4:-1] == ["--resume", "abc-123", "--prompt"]
    assert "phases still have no checkpoint commit: 2 " in argv[-1]
    assert "--session-id" not in argv


def test_success_reports_tokens_cost_and_session() -> None:
    events: list[Event] = [{"type": "init", "session_id": "s-9", "model": "auto"}, result()]

    found = assess_stream(events, 0, AgentConfig(), 0.0)

    assert found.error is None
    assert (found.session_id, found.input_tokens, found.output_tokens) == ("s-9", 300, 30)
    assert found.cost_usd == estimate_cost("gemini-2.5-pro", 300, 30)


def test_thinking_is_billed_as_output_and_cached_input_at_a_quarter() -> None:
    """What 0.61.0 reports (seen in test_agents_gemini_cli.py): `output_tokens` without the
    thinking, which only `total_tokens` counts; `input_tokens` with the `cached` ones."""
    usage = {"total_tokens": 1900, "input_tokens": 1000, "output_tokens": 600, "cached": 400}
    stats = {**usage, "models": {"gemini-2.5-flash": usage}}
    done: Event = {"type": "result", "status": "success", "stats": stats}

    found = assess_stream([done], 0, AgentConfig(), 0.0)

    assert (found.input_tokens, found.output_tokens) == (1000, 900)
    assert found.cost_usd == estimate_cost("gemini-2.5-flash", 1000 - 300, 900)


def test_failures_and_denials() -> None:
    def error_of(*events: Event, code: int = 0) -> str | None:
        return assess_stream(list(events), code, AgentConfig(), 0.0).error

    failed = result("error", error={"type": "Error", "message": "model refused"})
    assert error_of(failed, code=1) == "Gemini CLI reported an error: model refused"
    assert error_of({"type": "error", "message": "boom"}, code=1) == (
        "Gemini CLI ended without a result event (exit code 1): boom"
    )
    assert error_of(code=41) == "Gemini CLI ended without a result event (exit code 41)"
    call: Event = {"type": "tool_use", "tool_id": "t1", "tool_name": "run_shell_command"}
    call["parameters"] = {"command": "rm -rf build", "description": "clean"}
    denied: Event = {"type": "tool_result", "tool_id": "t1", "status": "error"}
    denied["error"] = {"type": "policy_violation", "message": GENERIC_DENIAL}
    assert error_of(call, denied, result()) == (
        "1 tool call(s) were denied by policy: run_shell_command(rm -rf build). Allow what the "
        "PRP needs with allowed_tools under [executor.gemini] in .ce/config.toml"
    )
    pushed = dict(denied, tool_id="t2")
    pushed["error"] = {
        "type": "policy_violation",
        "message": "Tool execution denied by policy. No.",
    }
    assert error_of(pushed, result()) == (  # no tool_use seen: the CLI's message as it is
        "1 tool call(s) were denied by policy: Tool execution denied by policy. No.. Allow what "
        "the PRP needs with allowed_tools under [executor.gemini] in .ce/config.toml"
    )
    tool_failed: Event = {"type": "tool_result", "status": "error"}
    tool_failed["error"] = {"type": "TOOL_EXECUTION_ERROR", "message": "exit 1"}
    assert error_of(tool_failed, result()) is None


def assess_log(tmp_path: Path, code: int, *lines: str) -> Assessment:
    """The preset's assessment of a launch whose log holds these lines."""
    job = make_job(tmp_path, "PRP-5.1.1", ["One"])
    return executor().assess(job, code, "\n".join(lines))


def test_without_a_result_the_clis_last_words_are_the_reason(tmp_path: Path) -> None:
    found = assess_log(
        tmp_path,
        1,
        "[ce] attempt 1: gemini --output-format stream-json ...",
        "Warning: 256-color support not detected. Using a terminal with at least 256-color",
        "Ripgrep is not available. Falling back to GrepTool.",
        '{"type": "init", "session_id": "s-1"}',
        "Error: connect ECONNREFUSED 127.0.0.1:9",
        "    at TCPConnectWrap.afterConnect (node:net:1555:16)",
        "Giving up.",
    )

    assert found.error == (
        "Gemini CLI ended without a result event (exit code 1): Error: connect ECONNREFUSED "
        "127.0.0.1:9 Giving up."
    )


def test_a_rejected_policy_file_fails_the_launch(tmp_path: Path) -> None:
    """0.61.0 only warns about a policy file it rejects and runs without it (seen when the
    rules lacked `toolName`): every shell command would then be denied, ce's allow-list gone."""
    found = assess_log(
        tmp_path,
        0,
        "[USER] Policy file error in gemini-policy.toml:",
        "  Schema validation failed",
        "Invalid policy rule (rule #1):",
        '  - Field "rule.0.toolName": Invalid input',
        '{"type": "init", "session_id": "s-1"}',
        '{"type": "result", "status": "success", "stats": {}}',
    )

    assert found.error == (
        "Gemini CLI rejected the policy file ce wrote: Policy file error in gemini-policy.toml: "
        'Schema validation failed Invalid policy rule (rule #1): - Field "rule.0.toolName": '
        "Invalid input"
    )
    assert found.session_id == "s-1"


def test_a_build_file_denial_says_no_policy_allows_it() -> None:
    call: Event = {"type": "tool_use", "tool_id": "w1", "tool_name": "write_file"}
    call["parameters"] = {"file_path": "/wt/pyproject.toml", "content": "[project]"}
    reason = "Modifying build configuration files requires explicit user confirmation"
    denied: Event = {"type": "tool_result", "tool_id": "w1", "status": "error"}
    denied["error"] = {"type": "policy_violation", "message": f"{GENERIC_DENIAL} {reason}"}

    found = assess_stream([call, denied, result()], 0, AgentConfig(), 0.0)

    assert found.error == (
        f"1 tool call(s) were denied by policy: write_file(/wt/pyproject.toml): {reason}. "
        "Gemini CLI 0.61.0 never lets a headless agent edit a build file (pyproject.toml, "
        "package.json, Makefile, ...), whatever the approval mode or policy"
    )
    shell: Event = {"type": "tool_use", "tool_id": "s1", "tool_name": "run_shell_command"}
    shell["parameters"] = {"command": "make"}
    refused = dict(denied, tool_id="s1", error={"type": "policy_violation", "message": "No."})
    both = assess_stream([call, denied, shell, refused, result()], 0, AgentConfig(), 0.0)
    assert both.error is not None
    assert both.error.startswith("2 tool call(s) were denied by policy: write_file(")
    assert both.error.endswith(
        "whatever the approval mode or policy; Allow what the PRP needs with allowed_tools "
        "under [executor.gemini] in .ce/config.toml"
    )


@pytest.mark.parametrize(
    ("message", "wait"),
    [
        ("[API Error: 429 RESOURCE_EXHAUSTED Quota exceeded. Please retry in 23.5s.]", 23.5),
        # What 0.61.0 prints from the API's RetryInfo (seen in test_agents_gemini_cli.py).
        ("[API Error: per-minute rate limit\nSuggested retry after 3s.]\nPlease wait", 3.0),
        ("[API Error: 429 Too Many Requests]", 60.0),
    ],
)
def test_rate_limit(message: str, wait: float) -> None:
    failed = result("error", error={"type": "unknown", "message": message})

    found = assess_stream([failed], 1, AgentConfig(), 0.0)

    assert found.retry_after == wait
    assert found.error is not None and found.error.startswith("rate-limited: Gemini CLI")


def test_preflight_names_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(CeError, match=r"npm install -g @google/gemini-cli@0\.61\.0"):
        GeminiExecutor(AgentConfig(binary=str(tmp_path / "gemini"))).preflight(tmp_path)
