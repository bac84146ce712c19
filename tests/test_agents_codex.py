"""The codex preset without the CLI: exactly what `ce` would run, and how it reads `--json`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_kit import make_job
from ce.agents.codex import CodexExecutor, assess_stream, retry_seconds
from ce.agents.stream import Event, estimate_cost
from ce.config import AgentConfig


def executor(**settings: object) -> CodexExecutor:
    return CodexExecutor(AgentConfig.model_validate({"binary": "codex", **settings}))


def assess(*events: Event, code: int = 0) -> tuple[str | None, float | None]:
    found = assess_stream(list(events), code, AgentConfig(), None)
    return found.error, found.retry_after


def completed(inputs: int = 100, outputs: int = 10, cached: int = 0) -> Event:
    usage = {"input_tokens": inputs, "cached_input_tokens": cached, "output_tokens": outputs}
    return {"type": "turn.completed", "usage": usage}


def test_default_command(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-2.1.1", ["One"])
    common = (tmp_path / "repo" / ".git").resolve()

    argv = executor().command(job)

    assert argv == [
        "codex",
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--add-dir",
        str(common / "worktrees" / "wt"),
        "--add-dir",
        str(common),
        "--add-dir",
        str(job.scratch),
        "--",
        job.prompt_path.read_text(),
    ]


def test_configured_command(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-2.1.1", ["One"], model="opus")
    settings = {"models": {"opus": "gpt-5"}, "extra_args": ["-c", "model_reasoning_effort=high"]}

    argv = executor(**settings).command(job)

    assert argv[argv.index("--model") : argv.index("--model") + 4] == [
        "--model",
        "gpt-5",
        "-c",
        "model_reasoning_effort=high",
    ]
    bypass = executor(skip_permissions=True).command(job)
    assert bypass[:4] == ["codex", "exec", "--json", "--dangerously-bypass-approvals-and-sandbox"]
    assert "--sandbox" not in bypass
    assert "--add-dir" not in bypass
    assert "--model" not in bypass  # no mapping: Codex's own default model
    mode = executor(permission_mode="danger-full-access").command(job)
    assert mode[mode.index("--sandbox") + 1] == "danger-full-access"


def test_nudge_resumes_the_thread(tmp_path: Path) -> None:
    job = make_job(tmp_path, "PRP-2.1.1", ["One", "Two"], resume_from=2)

    argv = executor().nudge_command(job, "thread-9")

    assert argv is not None
    assert argv[argv.index("resume") : argv.index("resume") + 3] == ["resume", "thread-9", "--"]
    assert argv.index("--sandbox") < argv.index("resume")
    assert argv[-1].startswith("You have stopped making progress on PRP-2.1.1.")
    assert executor(nudge=False).nudge_command(job, "thread-9") is None


def test_a_completed_turn_reports_tokens_thread_and_priced_cost() -> None:
    events: list[Event] = [
        {"type": "thread.started", "thread_id": "t-1"},
        {"type": "turn.started"},
        completed(inputs=1000, cached=500, outputs=100),
    ]

    found = assess_stream(events, 0, AgentConfig(), "gpt-5")

    assert found.error is None
    assert (found.session_id, found.input_tokens, found.output_tokens) == ("t-1", 1000, 100)
    assert found.cost_usd == estimate_cost("gpt-5", 550, 100)
    assert assess_stream(events, 0, AgentConfig(), None).cost_usd is None


def test_failures() -> None:
    failed: Event = {"type": "turn.failed", "error": {"message": "model exploded"}}
    assert assess(failed, code=1) == ("Codex turn failed: model exploded", None)
    reconnect: Event = {"type": "error", "message": "stream disconnected"}
    assert assess({"type": "turn.started"}, reconnect, code=1) == (
        "Codex ended without completing its turn (exit code 1): stream disconnected",
        None,
    )
    assert assess(code=137) == ("Codex ended without completing its turn (exit code 137)", None)


def test_refused_commands_fail_unless_configured_not_to() -> None:
    item = {"type": "command_execution", "command": "bash -lc 'touch /etc/x'", "status": "failed"}
    item["aggregated_output"] = "touch: cannot touch '/etc/x': Read-only file system"
    declined = {"type": "command_execution", "command": "rm -rf /", "status": "declined"}
    events: list[Event] = [
        {"type": "item.completed", "item": item},
        {"type": "item.completed", "item": declined},
        completed(),
    ]

    error, _ = assess(*events)

    assert error == (
        "2 command(s) were refused by the Codex sandbox: bash -lc 'touch /etc/x'; rm -rf /. "
        "Give the agent what the PRP needs with permission_mode or extra_args under "
        "[executor.codex]"
    )
    lenient = assess_stream(events, 0, AgentConfig(fail_on_denials=False), None)
    assert lenient.error is None


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("exceeded retry limit, last status: 429 Too Many Requests", 60.0),
        ("You've hit your usage limit. Try again in 2 hours 5 minutes.", 7500.0),
        ("Rate limit reached for gpt-5. Please try again in 20s.", 20.0),
        ("usage limit reached; retry after 1 day", 86400.0),
    ],
)
def test_rate_limits(message: str, seconds: float) -> None:
    failed: Event = {"type": "turn.failed", "error": {"message": message}}

    error, retry_after = assess(failed, code=1)

    assert error is not None and error.startswith("rate-limited: Codex turn failed: ")
    assert retry_after == seconds
    assert retry_seconds(message) == seconds
