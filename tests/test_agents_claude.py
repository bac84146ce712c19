"""The claude preset without the CLI: exactly what `ce` would run, and how it reads a stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_kit import make_job
from ce.agents.claude import DENIED, SESSION_FILE, ClaudeExecutor, assess_stream
from ce.agents.stream import Event, json_events
from ce.config import AgentConfig
from ce.core.errors import CeError

NOW = 1_800_000_000.0


def executor(**settings: object) -> ClaudeExecutor:
    return ClaudeExecutor(AgentConfig.model_validate({"binary": "claude", **settings}))


def assess(*events: Event, code: int = 0, **settings: object) -> tuple[str | None, float | None]:
    found = assess_stream(list(events), code, AgentConfig.model_validate(settings), NOW)
    return found.error, found.retry_after


def result(**fields: object) -> Event:
    return {"type": "result", "subtype": "success", "is_error": False, "num_turns": 3, **fields}


def test_default_command(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One"], validation=["pytest -q"], model="opus")

    argv = executor().command(job)

    session = (job.scratch / SESSION_FILE).read_text().strip()
    prompt = job.prompt_path.read_text()
    assert argv == [
        "claude",
        "--print",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "opus",
        "--add-dir",
        str(job.scratch),
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Bash(git add:*)",
        "Bash(git commit:*)",
        "Bash(git status:*)",
        "Bash(git diff:*)",
        "Bash(git log:*)",
        "Bash(git show:*)",
        "Bash(git rm:*)",
        "Bash(git mv:*)",
        "Bash(git restore:*)",
        "Bash(pytest -q:*)",
        "--disallowedTools",
        *DENIED,
        "--session-id",
        session,
        "--",
        prompt,
    ]
    assert "--dangerously-skip-permissions" not in argv
    assert "PRP-1.1.1: Phase N - <phase title>" in prompt
    assert "- `pytest -q`" in prompt


def test_configured_command(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One"], model="haiku")
    settings = {
        "permission_mode": "auto",
        "allowed_tools": ["Bash(npm test:*)", "Bash(git add:*)"],
        "models": {"haiku": "claude-haiku-4-5"},
        "max_budget_usd": 1.5,
        "extra_args": ["--effort", "low"],
    }

    argv = executor(**settings).command(job)

    assert argv[argv.index("--model") + 1] == "claude-haiku-4-5"
    assert argv[argv.index("--permission-mode") + 1] == "auto"
    allowed = argv[argv.index("--allowedTools") + 1 : argv.index("--disallowedTools")]
    assert allowed.count("Bash(git add:*)") == 1
    assert allowed[-1] == "Bash(npm test:*)"
    assert argv[argv.index("--max-budget-usd") + 1] == "1.5"
    assert argv[argv.index("--effort") : argv.index("--effort") + 2] == ["--effort", "low"]
    assert argv.index("--effort") < argv.index("--")


def test_skipping_permissions_is_an_explicit_opt_in(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One"])

    argv = executor(skip_permissions=True).command(job)

    assert "--dangerously-skip-permissions" in argv
    assert "--permission-mode" not in argv
    assert argv[argv.index("--disallowedTools") + 1 : argv.index("--session-id")] == list(DENIED)


def test_each_launch_gets_a_new_session(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One"])
    claude = executor()

    first = claude.command(job)
    second = claude.command(job)

    assert first[first.index("--session-id") + 1] != second[second.index("--session-id") + 1]


def test_nudge_resumes_the_session(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One", "Two", "Three"], resume_from=2)

    argv = executor().nudge_command(job, "0b1c0d3e-0000-4000-8000-000000000000")

    assert argv is not None
    assert argv[argv.index("--resume") + 1] == "0b1c0d3e-0000-4000-8000-000000000000"
    assert "--session-id" not in argv
    assert argv[-2] == "--"
    assert "phases still have no checkpoint commit: 2, 3 " in argv[-1]
    assert executor(nudge=False).nudge_command(job, "x") is None
    assert executor(nudge_message="Go on with ${prp_id}.").nudge_command(job, "x") == [
        *argv[: argv.index("--resume")],
        "--resume",
        "x",
        "--",
        "Go on with PRP-1.1.1.",
    ]


def test_repository_template_overrides_the_prompt(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-1.1.1", ["One"])
    override = job.repo_root / ".ce" / "templates" / "executor.md"
    override.parent.mkdir(parents=True)
    override.write_text("Do ${prp_id} from phase ${resume_from}.\n")

    argv = executor().command(job)

    assert argv[-1] == "Do PRP-1.1.1 from phase 1.\n"


def test_a_clean_result_reports_cost_tokens_and_session() -> None:
    events: list[Event] = [
        {"type": "system", "subtype": "init", "session_id": "s-1"},
        result(
            total_cost_usd=0.42,
            usage={"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7},
            permission_denials=[],
        ),
    ]

    found = assess_stream(events, 0, AgentConfig(), NOW)

    assert found.error is None
    assert (found.cost_usd, found.input_tokens, found.output_tokens) == (0.42, 15, 7)
    assert found.session_id == "s-1"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (result(is_error=True, result="boom"), "Claude Code reported an error after 3 turns: boom"),
        (
            result(subtype="error_max_turns", is_error=True),
            "Claude Code reported an error (error_max_turns) after 3 turns",
        ),
        (
            result(subtype="error_max_budget_usd", is_error=False),
            "Claude Code reported an error (error_max_budget_usd) after 3 turns",
        ),
        (
            result(is_error=True, api_error_status=500, result="API Error: 500 down"),
            "Claude Code reported an API error 500 after 3 turns: API Error: 500 down",
        ),
    ],
)
def test_errors_in_the_result(event: Event, expected: str) -> None:
    assert assess(event) == (expected, None)


def test_denials_fail_unless_configured_not_to() -> None:
    denials = [
        {"tool_name": "Bash", "tool_input": {"command": "rm -rf /"}},
        {"tool_name": "Write", "tool_input": {"file_path": "/etc/passwd"}},
        {"tool_name": "WebFetch", "tool_input": {"url": "https://x"}},
        {"tool_name": "Bash", "tool_input": {"command": "ls /root"}},
    ]
    error, _ = assess(result(permission_denials=denials))

    assert error == (
        "4 tool call(s) were denied permission: Bash(rm -rf /); Write(/etc/passwd); WebFetch; "
        "and 1 more. Allow what the PRP needs with allowed_tools under [executor.claude] in "
        ".ce/config.toml"
    )
    assert assess(result(permission_denials=denials), fail_on_denials=False) == (None, None)


def test_no_result_event() -> None:
    assert assess(code=137) == ("Claude Code printed no stream-json events (exit code 137)", None)
    assert assess({"type": "system", "subtype": "init"}, code=1) == (
        "Claude Code ended without a result event (exit code 1)",
        None,
    )


def test_a_stopped_cli_is_charged_for_the_messages_it_was_answered() -> None:
    def message(id: str, inputs: int, outputs: int) -> Event:
        usage = {"input_tokens": inputs, "cache_read_input_tokens": 1000, "output_tokens": outputs}
        return {
            "type": "assistant",
            "message": {"id": id, "model": "claude-sonnet-4-5", "usage": usage},
        }

    # One message per content block, under one id: counted once.
    events = [message("m1", 10, 20), message("m1", 10, 20), message("m2", 30, 40)]

    found = assess_stream(
        [{"type": "system", "session_id": "s1"}, *events], -15, AgentConfig(), NOW
    )

    assert (found.input_tokens, found.output_tokens, found.session_id) == (2040, 60, "s1")
    assert found.cost_usd == round((2040 * 3.0 + 60 * 15.0) / 1_000_000, 6)
    assert found.error == "Claude Code ended without a result event (exit code -15)"


def test_rate_limit_event_gives_the_reset_time() -> None:
    info = {"status": "rejected", "resetsAt": int(NOW) + 900, "rateLimitType": "five_hour"}
    events: list[Event] = [
        {"type": "rate_limit_event", "rate_limit_info": info},
        {"type": "assistant", "error": "rate_limit", "message": {"content": []}},
        result(is_error=True, api_error_status=429),
    ]

    assert assess(*events) == ("rate-limited by the API; retry in 900s", 900.0)


def test_rate_limit_from_retries_or_usage_limit_text() -> None:
    retry: Event = {"type": "system", "subtype": "api_retry", "error_status": 429}
    retry["retry_delay_ms"] = 4200
    failed = result(is_error=True, api_error_status=429)
    assert assess(retry, failed) == ("rate-limited by the API; retry in 4s", 4.2)
    assert assess(failed) == ("rate-limited by the API; retry in 60s", 60.0)
    usage = result(is_error=True, result=f"Claude AI usage limit reached|{int(NOW) + 120}")
    assert assess(usage) == ("rate-limited by the API; retry in 120s", 120.0)
    allowed: Event = {"type": "rate_limit_event", "rate_limit_info": {"status": "allowed_warning"}}
    assert assess(allowed, result()) == (None, None)


def test_the_log_may_hold_other_lines() -> None:
    output = "\n".join(
        [
            "[ce] attempt 1: claude ...",
            json.dumps({"type": "system", "subtype": "init", "session_id": "s"}),
            "some stderr line {not json",
            "[1, 2]",
            json.dumps(result()),
        ]
    )

    assert [event["type"] for event in json_events(output)] == ["system", "result"]


def write_fake_cli(path: Path, help_text: str, version: str = "2.1.330 (Claude Code)") -> Path:
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi\n'
        f"cat <<'EOF'\n{help_text}\nEOF\n"
    )
    path.chmod(0o755)
    return path


def test_preflight_names_what_to_install(tmp_path: Path) -> None:
    missing = ClaudeExecutor(AgentConfig(binary=str(tmp_path / "nowhere" / "claude")))

    with pytest.raises(CeError) as caught:
        missing.preflight(tmp_path)

    message = str(caught.value)
    assert "was not found" in message
    assert "npm install -g @anthropic-ai/claude-code@2.1.330" in message
    assert "[executor.claude]" in message


def test_preflight_rejects_a_cli_without_the_flags(tmp_path: Path) -> None:
    old = write_fake_cli(tmp_path / "claude", "Usage: claude [options]\n  -p, --print\n  --verbose")

    with pytest.raises(CeError) as caught:
        ClaudeExecutor(AgentConfig(binary=str(old))).preflight(tmp_path)

    message = str(caught.value)
    assert "does not accept --output-format, --model, --session-id" in message
    assert "npm install -g @anthropic-ai/claude-code@2.1.330" in message


def test_preflight_checks_the_budget_flag_only_when_used(tmp_path: Path) -> None:
    flags = "--print --output-format --verbose --model --session-id --resume --permission-mode"
    flags += " --allowedTools --disallowedTools --add-dir"
    cli = write_fake_cli(tmp_path / "claude", flags)

    ClaudeExecutor(AgentConfig(binary=str(cli))).preflight(tmp_path)
    with pytest.raises(CeError, match="does not accept --max-budget-usd"):
        ClaudeExecutor(AgentConfig(binary=str(cli), max_budget_usd=3)).preflight(tmp_path)
