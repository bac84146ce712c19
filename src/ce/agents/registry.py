"""All executors in one place, like pre-commit's `all_languages`."""

from __future__ import annotations

from ce.agents.base import Executor
from ce.agents.claude import ClaudeExecutor
from ce.agents.codex import CodexExecutor
from ce.agents.command import CommandExecutor
from ce.agents.script import ScriptExecutor
from ce.config import Config
from ce.errors import CeError

AGENT_PRESETS = ("claude", "codex", "gemini", "aider")


def make_executor(name: str, config: Config) -> Executor:
    tables = config.executor_tables
    if name == "script":
        return ScriptExecutor()
    if name == "command":
        return CommandExecutor(tables.command.run)
    if name == "claude":
        return ClaudeExecutor(tables.claude)
    if name == "codex":
        return CodexExecutor(tables.codex)
    if name in AGENT_PRESETS:
        raise CeError(
            f"The {name} executor is not available in this version of ce yet. "
            "Use --executor claude, codex, script (runs the PRPs' `sh run` blocks) or command "
            'with [executor.command] run = "..." in .ce/config.toml.'
        )
    raise CeError(f"Unknown executor {name!r}: choose script, command, {', '.join(AGENT_PRESETS)}.")
