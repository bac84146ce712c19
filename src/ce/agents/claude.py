"""The `claude` preset: Claude Code in print mode, streaming JSON events.

    claude -p --output-format stream-json --verbose --model sonnet --session-id <uuid>
           --permission-mode acceptEdits --allowedTools <rules...> --disallowedTools <rules...>
           --add-dir <scratch> [--max-budget-usd N] -- <prompt>

Edits inside the worktree are accepted by the permission mode; the Bash commands the work needs
(git add/commit and the repository's validation commands) are allowed by rule; anything else that
would ask for approval is denied (print mode has nobody to ask), and a denial fails the PRP.
`--dangerously-skip-permissions` is used only when `skip_permissions = true` is configured.
Variadic flags come before `--`, so the prompt is never taken for one of their values.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

from ce.agents import preset, stream
from ce.agents.base import Assessment, ExecutorJob, write_prompt
from ce.agents.stream import Event
from ce.config import AgentConfig
from ce.core.vocab import MODEL_TIERS

PACKAGE = preset.CliPackage(
    agent="Claude Code",
    preset="claude",
    binary="claude",
    installer="npm install -g",
    package="@anthropic-ai/claude-code",
    pinned="2.1.330",
)
DEFAULT_PERMISSION_MODE = "acceptEdits"
# Always allowed: the git commands of the checkpoint protocol. No bare `Edit` or `Write`: that
# rule would allow edits anywhere, while the permission mode accepts them only in the worktree
# and the `--add-dir` scratch directory. Reading needs no rule.
ALLOWED = (
    "Bash(git add:*)",
    "Bash(git commit:*)",
    "Bash(git status:*)",
    "Bash(git diff:*)",
    "Bash(git log:*)",
    "Bash(git show:*)",
    "Bash(git rm:*)",
    "Bash(git mv:*)",
    "Bash(git restore:*)",
)
# `ce` merges the branch itself; deny rules hold even against a broad allow rule.
DENIED = (
    "Bash(git push:*)",
    "Bash(git merge:*)",
    "Bash(git rebase:*)",
    "Bash(git switch:*)",
    "Bash(git worktree:*)",
)
FLAGS = (
    "--print",
    "--output-format",
    "--verbose",
    "--model",
    "--session-id",
    "--resume",
    "--permission-mode",
    "--allowedTools",
    "--disallowedTools",
    "--add-dir",
)
# Claude Code knows the aliases itself.
MODELS: dict[str, str] = {tier: tier for tier in MODEL_TIERS}
SESSION_FILE = "claude-session-id"
DEFAULT_RETRY_SECONDS = 60.0
_USAGE_LIMIT = re.compile(r"usage limit reached\|(\d{9,})", re.IGNORECASE)


class ClaudeExecutor(preset.AgentPreset):
    name = "claude"
    package = PACKAGE

    def flags(self) -> list[str]:
        flags = list(FLAGS)
        if self.config.max_budget_usd is not None:
            flags.append("--max-budget-usd")
        if self.config.skip_permissions:
            flags.append("--dangerously-skip-permissions")
        return flags

    def command(self, job: ExecutorJob) -> list[str]:
        prompt = preset.prompt_argument(job, write_prompt(job))
        session = str(uuid.uuid4())
        (job.scratch / SESSION_FILE).write_text(session + "\n", encoding="utf-8")
        return [*self._head(job), "--session-id", session, "--", prompt]

    def nudge_command(self, job: ExecutorJob, session_id: str) -> list[str] | None:
        """Resume `session_id` with a short nudge; the stalled process must be stopped first."""
        if not self.config.nudge:
            return None
        return [*self._head(job), "--resume", session_id, "--", preset.nudge_text(job, self.config)]

    def _head(self, job: ExecutorJob) -> list[str]:
        argv = [
            self.binary,
            "--print",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        model = preset.model_name(job, self.config, MODELS)
        if model:
            argv += ["--model", model]
        argv += self._permissions(job)
        if self.config.max_budget_usd is not None:
            argv += ["--max-budget-usd", f"{self.config.max_budget_usd:g}"]
        return [*argv, *self.config.extra_args]

    def _permissions(self, job: ExecutorJob) -> list[str]:
        # The scratch directory holds the result file the agent is asked to write.
        argv = ["--add-dir", str(job.scratch)]
        if self.config.skip_permissions:
            return [*argv, "--dangerously-skip-permissions", "--disallowedTools", *DENIED]
        mode = self.config.permission_mode or DEFAULT_PERMISSION_MODE
        return [
            *argv,
            "--permission-mode",
            mode,
            "--allowedTools",
            *allowed_tools(job.validation_commands, self.config.allowed_tools or ()),
            "--disallowedTools",
            *DENIED,
        ]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        return assess_stream(list(stream.json_events(output)), exit_code, self.config, time.time())


def allowed_tools(validation: Sequence[str], configured: Sequence[str]) -> list[str]:
    """The preset's rules, one prefix rule per validation command, then the configured ones."""
    rules = [*ALLOWED, *(f"Bash({command.strip()}:*)" for command in validation if command.strip())]
    rules += configured
    return list(dict.fromkeys(rules))


def assess_stream(
    events: list[Event], exit_code: int, config: AgentConfig, now: float
) -> Assessment:
    """Judge one launch from its stream-json events (`now`: epoch seconds, for reset times)."""
    result = stream.last(events, "result")
    if result is None:  # stopped (stalled, Ctrl-C): what its answered turns used
        base = _spent_before_stopping(events)
    else:
        usage = _usage(result)
        base = Assessment(
            session_id=_session_id(events),
            cost_usd=stream.as_float(result.get("total_cost_usd")),
            input_tokens=usage[0],
            output_tokens=usage[1],
        )
    retry_after = rate_limit_wait(events, now)
    if retry_after is not None:
        error = f"rate-limited by the API; retry in {retry_after:.0f}s"
        return replace(base, error=error, retry_after=retry_after)
    if result is None:
        return replace(base, error=_no_result(events, exit_code))
    return replace(base, error=_result_error(result, config))


def _spent_before_stopping(events: list[Event]) -> Assessment:
    """A CLI stopped before its result event still printed each answered message with its
    usage (once per content block, under one message id): those tokens, at list price."""
    messages = {}
    for event in events:
        message = event.get("message")
        answered = isinstance(message, dict) and isinstance(message.get("usage"), dict)
        if event.get("type") == "assistant" and answered:
            assert isinstance(message, dict)
            messages[message.get("id")] = message
    if not messages:
        return Assessment(session_id=_session_id(events))
    inputs = outputs = 0
    for message in messages.values():
        tokens = _usage(message)
        inputs, outputs = inputs + tokens[0], outputs + tokens[1]
    model = next((m.get("model") for m in messages.values() if m.get("model")), None)
    return Assessment(
        session_id=_session_id(events),
        cost_usd=stream.estimate_cost(model if isinstance(model, str) else None, inputs, outputs),
        input_tokens=inputs,
        output_tokens=outputs,
    )


def _usage(result: Event | None) -> tuple[int, int]:
    usage = result.get("usage") if result else None
    if not isinstance(usage, dict):
        return 0, 0
    read = stream.as_int
    inputs = (
        read(usage.get("input_tokens"))
        + read(usage.get("cache_creation_input_tokens"))
        + read(usage.get("cache_read_input_tokens"))
    )
    return inputs, read(usage.get("output_tokens"))


def _session_id(events: list[Event]) -> str | None:
    for event in events:
        session = event.get("session_id")
        if isinstance(session, str) and session:
            return session
    return None


def _no_result(events: list[Event], exit_code: int) -> str:
    if not events:
        return f"Claude Code printed no stream-json events (exit code {exit_code})"
    return f"Claude Code ended without a result event (exit code {exit_code})"


def _result_error(result: Event, config: AgentConfig) -> str | None:
    subtype = str(result.get("subtype") or "")
    if result.get("is_error") or subtype not in ("", "success"):
        return _agent_error(result, subtype)
    denials = result.get("permission_denials") or []
    if denials and config.fail_on_denials:
        return describe_denials(denials)
    return None


def _agent_error(result: Event, subtype: str) -> str:
    status = result.get("api_error_status")
    reason = stream.short(str(result.get("result") or result.get("errors") or ""), 300)
    if status:
        what = f"API error {status}"
    else:
        what = "error" if subtype in ("", "success") else f"error ({subtype})"
    turns = result.get("num_turns")
    after = f" after {turns} turns" if isinstance(turns, int) else ""
    return f"Claude Code reported an {what}{after}: {reason}".rstrip(": ")


def describe_denials(denials: Sequence[object]) -> str:
    tools = [_denied_call(denial) for denial in denials]
    shown = "; ".join(tools[:3]) + (f"; and {len(tools) - 3} more" if len(tools) > 3 else "")
    return (
        f"{len(tools)} tool call(s) were denied permission: {shown}. Allow what the PRP needs "
        "with allowed_tools under [executor.claude] in .ce/config.toml"
    )


def _denied_call(denial: object) -> str:
    if not isinstance(denial, dict):
        return stream.short(str(denial), 80)
    tool = str(denial.get("tool_name") or "?")
    given = denial.get("tool_input")
    detail = ""
    if isinstance(given, dict):
        detail = str(given.get("command") or given.get("file_path") or given.get("path") or "")
    return f"{tool}({stream.short(detail, 80)})" if detail else tool


def rate_limit_wait(events: list[Event], now: float) -> float | None:
    """Seconds to wait before launching agents again, when this launch hit a rate limit."""
    for event in reversed(events):
        info = event.get("rate_limit_info") if event.get("type") == "rate_limit_event" else None
        if isinstance(info, dict) and info.get("status") == "rejected":
            resets = stream.as_float(info.get("resetsAt"))
            return max(resets - now, 1.0) if resets else DEFAULT_RETRY_SECONDS
    if not any(_is_rate_limit(event) for event in events):
        return None
    for event in reversed(events):
        match = _USAGE_LIMIT.search(str(event.get("result") or ""))
        if match:
            return max(float(match.group(1)) - now, 1.0)
        if event.get("subtype") == "api_retry" and event.get("error_status") == 429:
            delay = stream.as_float(event.get("retry_delay_ms"))
            return max(delay / 1000, 1.0) if delay else DEFAULT_RETRY_SECONDS
    return DEFAULT_RETRY_SECONDS


def _is_rate_limit(event: Event) -> bool:
    if event.get("type") == "assistant":
        return event.get("error") == "rate_limit" or event.get("api_error_status") == 429
    if event.get("type") == "result":
        return event.get("api_error_status") == 429 or bool(
            _USAGE_LIMIT.search(str(event.get("result") or ""))
        )
    return False
