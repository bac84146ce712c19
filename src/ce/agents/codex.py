"""The `codex` preset: `codex exec --json`, sandboxed to writing the worktree.

    codex exec --json --sandbox workspace-write --add-dir <git dir> --add-dir <git common dir>
               --add-dir <scratch> [--model M] -- <prompt>

A linked worktree keeps its git metadata outside the worktree (`<repo>/.git/worktrees/<name>`
and the shared object store), which the sandbox would leave read-only: both are added as
writable roots so the agent can make its checkpoint commits. `codex exec` never asks for
approval, so a command the sandbox refuses simply fails; `ce` reads those refusals from the
stream. `--dangerously-bypass-approvals-and-sandbox` only with `skip_permissions = true`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ce import git
from ce.agents import preset, stream
from ce.agents.base import Assessment, ExecutorJob, write_prompt
from ce.agents.stream import Event
from ce.config import AgentConfig

PACKAGE = preset.CliPackage(
    agent="Codex",
    preset="codex",
    binary="codex",
    installer="npm install -g",
    package="@openai/codex",
    pinned="0.169.0",
)
DEFAULT_SANDBOX = "workspace-write"
FLAGS = ("--json", "--sandbox", "--add-dir", "--model", "resume")
DEFAULT_RETRY_SECONDS = 60.0
_REFUSED = ("Read-only file system", "Operation not permitted")
_RATE_LIMITED = re.compile(r"\b429\b|rate.?limit|usage limit", re.IGNORECASE)
_RETRY_IN = re.compile(r"(?:try again|retry) (?:in|after) ([^.]+)", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|day|h|hour|m|min|minute|s|sec|second)s?\b", re.I)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class CodexExecutor(preset.AgentPreset):
    name = "codex"
    package = PACKAGE
    help_args = ("exec", "--help")

    def flags(self) -> list[str]:
        bypass = ("--dangerously-bypass-approvals-and-sandbox",) * self._bypass
        return [*FLAGS, *bypass]

    @property
    def _bypass(self) -> bool:
        return self.config.skip_permissions

    def command(self, job: ExecutorJob) -> list[str]:
        prompt = preset.prompt_argument(job, write_prompt(job))
        return [*self._head(job), "--", prompt]

    def nudge_command(self, job: ExecutorJob, session_id: str) -> list[str] | None:
        """`codex exec ... resume <thread id> -- <nudge>`: the same sandbox, the same thread."""
        if not self.config.nudge:
            return None
        nudge = preset.nudge_text(job, self.config)
        return [*self._head(job), "resume", session_id, "--", nudge]

    def _head(self, job: ExecutorJob) -> list[str]:
        argv = [self.binary, "exec", "--json"]
        argv += self._sandbox(job)
        model = preset.model_name(job, self.config, {})
        if model:
            argv += ["--model", model]
        return [*argv, *self.config.extra_args]

    def _sandbox(self, job: ExecutorJob) -> list[str]:
        if self._bypass:
            return ["--dangerously-bypass-approvals-and-sandbox"]
        argv = ["--sandbox", self.config.permission_mode or DEFAULT_SANDBOX]
        for directory in (*git_dirs(job.worktree), job.scratch):
            argv += ["--add-dir", str(directory)]
        return argv

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        model = preset.model_name(job, self.config, {})
        return assess_stream(list(stream.json_events(output)), exit_code, self.config, model)


def git_dirs(worktree: Path) -> list[Path]:
    """The worktree's own git dir and the shared one (the same path in a main checkout)."""
    repo = git.Repo(worktree)
    own = Path(repo.git("rev-parse", "--absolute-git-dir").stdout.strip())
    common = repo.common_dir()
    return [own] if own == common else [own, common]


def assess_stream(
    events: list[Event], exit_code: int, config: AgentConfig, model: str | None
) -> Assessment:
    inputs, cached, outputs = _usage(events)
    billable = inputs - cached * 9 // 10  # cached input is billed at a tenth
    base = Assessment(
        session_id=_thread_id(events),
        input_tokens=inputs if inputs or outputs else None,
        output_tokens=outputs if inputs or outputs else None,
        cost_usd=stream.estimate_cost(model, billable, outputs),
    )
    failure = _failure(events, exit_code)
    if failure is not None and _RATE_LIMITED.search(failure):
        wait = retry_seconds(failure)
        error = f"rate-limited: {failure}; retry in {wait:.0f}s"
        return replace(base, error=error, retry_after=wait)
    if failure is None and config.fail_on_denials:
        failure = _refusals(events)
    return replace(base, error=failure)


def _usage(events: list[Event]) -> tuple[int, int, int]:
    inputs = cached = outputs = 0
    for event in events:
        usage = event.get("usage") if event.get("type") == "turn.completed" else None
        if isinstance(usage, dict):
            inputs += stream.as_int(usage.get("input_tokens"))
            cached += stream.as_int(usage.get("cached_input_tokens"))
            outputs += stream.as_int(usage.get("output_tokens"))
    return inputs, cached, outputs


def _thread_id(events: list[Event]) -> str | None:
    started = stream.last(events, "thread.started")
    thread = started.get("thread_id") if started else None
    return thread if isinstance(thread, str) and thread else None


def _failure(events: list[Event], exit_code: int) -> str | None:
    failed = stream.last(events, "turn.failed")
    if failed is not None:
        error = failed.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return f"Codex turn failed: {stream.short(str(message or 'no reason given'), 300)}"
    if stream.last(events, "turn.completed") is None:
        last_error = stream.last(events, "error")
        why = f": {stream.short(str(last_error.get('message')), 300)}" if last_error else ""
        return f"Codex ended without completing its turn (exit code {exit_code}){why}"
    return None


def _refusals(events: list[Event]) -> str | None:
    refused = [
        str(item.get("command") or "?")
        for item in _completed_items(events, "command_execution")
        if item.get("status") == "declined"
        or any(mark in str(item.get("aggregated_output") or "") for mark in _REFUSED)
    ]
    if not refused:
        return None
    shown = "; ".join(stream.short(command, 80) for command in refused[:3])
    return (
        f"{len(refused)} command(s) were refused by the Codex sandbox: {shown}. Give the agent "
        "what the PRP needs with permission_mode or extra_args under [executor.codex]"
    )


def _completed_items(events: list[Event], kind: str) -> list[dict[str, object]]:
    items = []
    for event in events:
        item = event.get("item") if event.get("type") == "item.completed" else None
        if isinstance(item, dict) and item.get("type") == kind:
            items.append(item)
    return items


def retry_seconds(message: str) -> float:
    """The wait a rate-limit message asks for ("try again in 2 hours 5 minutes"), else 60s."""
    match = _RETRY_IN.search(message)
    if match is None:
        return DEFAULT_RETRY_SECONDS
    total = sum(
        float(amount) * _UNIT_SECONDS[unit[0].lower()]
        for amount, unit in _DURATION.findall(match.group(1))
    )
    return total if total > 0 else DEFAULT_RETRY_SECONDS
