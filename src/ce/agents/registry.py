"""All executors in one place, like pre-commit's `all_languages`."""

from __future__ import annotations

from ce.agents.aider import AiderExecutor
from ce.agents.base import Executor
from ce.agents.claude import ClaudeExecutor
from ce.agents.codex import CodexExecutor
from ce.agents.command import CommandExecutor
from ce.agents.gemini import GeminiExecutor
from ce.agents.script import ScriptExecutor
from ce.config import Config
from ce.core.errors import CeError
from ce.core.vocab import EXECUTORS


def make_executor(name: str, config: Config) -> Executor:
    tables = config.executor_tables
    presets: dict[str, Executor] = {
        "claude": ClaudeExecutor(tables.claude),
        "codex": CodexExecutor(tables.codex),
        "gemini": GeminiExecutor(tables.gemini),
        "aider": AiderExecutor(tables.aider),
    }
    if name == "script":
        return ScriptExecutor()
    if name == "command":
        return CommandExecutor(tables.command.run)
    if name in presets:
        return presets[name]
    raise CeError(f"Unknown executor {name!r}: choose {', '.join(EXECUTORS)}.")
