"""The `gemini` preset: Gemini CLI headless, streaming JSON events.

    gemini --output-format stream-json --approval-mode auto_edit --skip-trust
           --policy <scratch>/gemini-policy.toml --include-directories <scratch>
           --session-id <uuid> [--model M] --prompt <prompt>

`auto_edit` approves file edits; the shell commands the work needs (git add/commit and the
validation commands) are allowed by a policy file `ce` writes for the launch; anything else
would ask, which headless mode turns into a denial, and a denial fails the PRP. `--skip-trust`
because the worktree is a new folder the trust dialog has never seen and headless mode would
refuse it. `--approval-mode yolo` only with `skip_permissions = true`.

What the pinned CLI really does (tests/test_agents_gemini_cli.py runs it): a policy rule needs
`toolName`, and a file the CLI rejects is only warned about (so `assess` fails the launch on
that warning); a denial's message names no command, so the `tool_use` event it answers does;
edits of build files are denied headless whatever the mode; a rate limit ends with the CLI's
"Suggested retry after Ns." from the API's RetryInfo.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ce.agents import preset, stream
from ce.agents.base import Assessment, ExecutorJob, write_prompt
from ce.agents.stream import Event
from ce.config import AgentConfig

PACKAGE = preset.CliPackage(
    agent="Gemini CLI",
    preset="gemini",
    binary="gemini",
    installer="npm install -g",
    package="@google/gemini-cli",
    pinned="0.61.0",
)
DEFAULT_APPROVAL_MODE = "auto_edit"
ALLOWED_COMMANDS = (
    "git add",
    "git commit",
    "git status",
    "git diff",
    "git log",
    "git show",
    "git rm",
    "git mv",
    "git restore",
)
DENIED_COMMANDS = ("git push", "git merge", "git rebase", "git switch", "git worktree")
FLAGS = (
    "--output-format",
    "--approval-mode",
    "--skip-trust",
    "--policy",
    "--include-directories",
    "--session-id",
    "--resume",
    "--model",
    "--prompt",
)
POLICY_FILE = "gemini-policy.toml"
SESSION_FILE = "gemini-session-id"
DEFAULT_RETRY_SECONDS = 60.0
_DENIED = frozenset({"policy_violation", "permission_denied"})
_RATE_LIMITED = re.compile(r"\b429\b|RESOURCE_EXHAUSTED|quota|rate.?limit", re.IGNORECASE)
# The API says "Please retry in 23.5s"; the CLI adds "Suggested retry after 3s." from RetryInfo.
_RETRY_IN = re.compile(r"retry (?:in|after) (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
GENERIC_DENIAL = "Tool execution denied by policy."
_START_UP_NOTES = ("[ce]", "Warning: 256-color support", "Ripgrep is not available")
_BUILD_FILE_DENIAL = "Modifying build configuration files"
_POLICY_REJECTED = re.compile(r"Policy file error in .*(?:\n(?!\{).*){0,4}")  # not the JSON
_CLAUDE_RULE = re.compile(r"^Bash\((?P<prefix>.*?)(?::\*)?\)$")


class GeminiExecutor(preset.AgentPreset):
    name = "gemini"
    package = PACKAGE

    def flags(self) -> list[str]:
        return list(FLAGS)

    def command(self, job: ExecutorJob) -> list[str]:
        prompt = preset.prompt_argument(job, write_prompt(job))
        session = str(uuid.uuid4())
        (job.scratch / SESSION_FILE).write_text(session + "\n", encoding="utf-8")
        return [*self._head(job), "--session-id", session, "--prompt", prompt]

    def nudge_command(self, job: ExecutorJob, session_id: str) -> list[str] | None:
        if not self.config.nudge:
            return None
        nudge = preset.nudge_text(job, self.config)
        return [*self._head(job), "--resume", session_id, "--prompt", nudge]

    def _head(self, job: ExecutorJob) -> list[str]:
        argv = [
            self.binary,
            "--output-format",
            "stream-json",
            *self._permissions(job),
            "--include-directories",
            str(job.scratch),
        ]
        model = preset.model_name(job, self.config, {})
        if model:
            argv += ["--model", model]
        return [*argv, *self.config.extra_args]

    def _permissions(self, job: ExecutorJob) -> list[str]:
        if self.config.skip_permissions:
            return ["--approval-mode", "yolo", "--skip-trust"]
        policy = job.scratch / POLICY_FILE
        job.scratch.mkdir(parents=True, exist_ok=True)
        allowed = allowed_commands(job.validation_commands, self.config.allowed_tools or ())
        policy.write_text(policy_toml(allowed, DENIED_COMMANDS), encoding="utf-8")
        mode = self.config.permission_mode or DEFAULT_APPROVAL_MODE
        return ["--approval-mode", mode, "--skip-trust", "--policy", str(policy)]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        events = list(stream.json_events(output))
        found = assess_stream(events, exit_code, self.config, time.time(), said=_said(output))
        rejected = _POLICY_REJECTED.search(output)
        if rejected is None or found.retry_after is not None:
            return found
        # The CLI goes on without a policy it rejects (it only warns): ce's allow-list is gone.
        why = stream.short(rejected.group(0), 300)
        return replace(found, error=f"Gemini CLI rejected the policy file ce wrote: {why}")


def allowed_commands(validation: Sequence[str], configured: Sequence[str]) -> list[str]:
    """Shell command prefixes the agent may run. Configured entries may be Claude-style rules
    (`Bash(npm test:*)`) so one `allowed_tools` list serves both presets."""
    prefixes = [*ALLOWED_COMMANDS, *(c.strip() for c in validation if c.strip())]
    for entry in configured:
        match = _CLAUDE_RULE.match(entry.strip())
        prefixes.append(match["prefix"] if match else entry.strip())
    return list(dict.fromkeys(p for p in prefixes if p))


def policy_toml(allowed: Iterable[str], denied: Iterable[str]) -> str:
    """A Gemini CLI policy: deny rules outrank allow rules (higher priority)."""
    # JSON strings are valid TOML basic strings.
    return (
        "# Written by ce for one launch of the gemini executor.\n"
        "[[rule]]\n"
        'toolName = "run_shell_command"\n'
        f"commandPrefix = {json.dumps(list(allowed))}\n"
        'decision = "allow"\n'
        "priority = 500\n\n"
        "[[rule]]\n"
        'toolName = "run_shell_command"\n'
        f"commandPrefix = {json.dumps(list(denied))}\n"
        'decision = "deny"\n'
        "priority = 900\n"
        'denyMessage = "ce merges the branch itself: do not push, merge, rebase or switch."\n'
    )


def assess_stream(
    events: list[Event], exit_code: int, config: AgentConfig, now: float, *, said: str = ""
) -> Assessment:
    """What a launch did, from its stream-json events; `said`: the CLI's words outside them."""
    result = stream.last(events, "result")
    stats = result.get("stats") if result else None
    inputs, outputs, cost = _usage(stats if isinstance(stats, dict) else {})
    init = stream.last(events, "init")
    session = init.get("session_id") if init else None
    base = Assessment(
        session_id=session if isinstance(session, str) else None,
        input_tokens=inputs if result else None,
        output_tokens=outputs if result else None,
        cost_usd=cost,
    )
    failure = _failure(events, result, exit_code, said)
    if failure is not None and _RATE_LIMITED.search(failure):
        match = _RETRY_IN.search(failure)
        wait = max(float(match.group(1)), 1.0) if match else DEFAULT_RETRY_SECONDS
        error = f"rate-limited: {failure}; retry in {wait:.0f}s"
        return replace(base, error=error, retry_after=wait)
    if failure is None and config.fail_on_denials:
        failure = _denials(events)
    return replace(base, error=failure)


def _usage(stats: dict[str, object]) -> tuple[int, int, float | None]:
    """Tokens in and out, and their price. The CLI's `output_tokens` leaves out the thinking,
    which is billed as output: it is the rest of `total_tokens`. Its `input_tokens` include
    the `cached` ones, billed at a quarter."""
    inputs, outputs = _tokens(stats)
    models = stats.get("models")
    costs = [
        _model_cost(name, usage)
        for name, usage in (models.items() if isinstance(models, dict) else ())
        if isinstance(usage, dict)
    ]
    known = [c for c in costs if c is not None]
    cost = round(sum(known), 6) if known and len(known) == len(costs) else None
    return inputs, outputs, cost


def _tokens(usage: dict[str, object]) -> tuple[int, int]:
    inputs = stream.as_int(usage.get("input_tokens"))
    outputs = stream.as_int(usage.get("output_tokens"))
    return inputs, max(outputs, stream.as_int(usage.get("total_tokens")) - inputs)


def _model_cost(model: str, usage: dict[str, object]) -> float | None:
    inputs, outputs = _tokens(usage)
    billable = inputs - stream.as_int(usage.get("cached")) * 3 // 4
    return stream.estimate_cost(model, billable, outputs)


def _failure(events: list[Event], result: Event | None, exit_code: int, said: str) -> str | None:
    if result is None:
        last_error = stream.last(events, "error")
        why = str(last_error.get("message")) if last_error else said
        shown = f": {stream.short(why, 300)}" if why else ""
        return f"Gemini CLI ended without a result event (exit code {exit_code}){shown}"
    if result.get("status") == "success":
        return None
    error = result.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return f"Gemini CLI reported an error: {stream.short(str(message or 'no reason given'), 300)}"


def _said(output: str) -> str:
    """The CLI's last lines outside its JSON events and stack traces (why it stopped before a
    result, such as a missing API key), without its start-up notes and ce's own lines."""
    lines = [line.strip() for line in output.splitlines() if line[:1] not in ("", " ", "\t")]
    words = [line for line in lines if not line.startswith(("{", *_START_UP_NOTES))]
    return " ".join(words[-3:])


def _denials(events: list[Event]) -> str | None:
    calls = {e.get("tool_id"): e for e in events if e.get("type") == "tool_use"}
    denied = []
    for event in events:
        error = event.get("error") if event.get("type") == "tool_result" else None
        if isinstance(error, dict) and error.get("type") in _DENIED:
            denied.append(_denied_call(calls.get(event.get("tool_id")), str(error.get("message"))))
    if not denied:
        return None
    shown = "; ".join(denied[:3])
    fixes = []
    if any(_BUILD_FILE_DENIAL in d for d in denied):
        fixes.append(
            f"Gemini CLI {PACKAGE.pinned} never lets a headless agent edit a build file "
            "(pyproject.toml, package.json, Makefile, ...), whatever the approval mode or policy"
        )
    if not all(_BUILD_FILE_DENIAL in d for d in denied):
        fixes.append(
            "Allow what the PRP needs with allowed_tools under [executor.gemini] in .ce/config.toml"
        )
    return f"{len(denied)} tool call(s) were denied by policy: {shown}. {'; '.join(fixes)}"


def _denied_call(call: Event | None, message: str) -> str:
    """`run_shell_command(npm install left-pad)`, then the policy's own reason if it gave one
    (the CLI's message names no command)."""
    reason = message.removeprefix(GENERIC_DENIAL).strip().rstrip(".")
    parameters = call.get("parameters") if call else None
    if call is None or not isinstance(parameters, dict):
        return stream.short(message, 100)
    argument = parameters.get("command") or parameters.get("file_path") or ""
    named = f"{call.get('tool_name')}({stream.short(str(argument), 100)})"
    return f"{named}: {stream.short(reason, 100)}" if reason else named
