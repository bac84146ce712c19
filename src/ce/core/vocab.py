"""The words a user picks from: executors, model tiers, schedules, conflict policies, backends.

Each list is written once, here; the configuration's validation and the command line's
choices are derived from it, so a new executor or policy cannot be accepted by one and
refused by the other.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

ExecutorName = Literal["script", "command", "claude", "codex", "gemini", "aider"]
AgentPreset = Literal["claude", "codex", "gemini", "aider"]  # the executors that are agent CLIs
ModelTier = Literal["haiku", "sonnet", "opus"]  # cheapest first
Schedule = Literal["stages", "eager"]
ConflictPolicy = Literal["pause", "agent", "rerun"]
BackendName = Literal["local", "ray"]  # where an attempt runs (DESIGN.md § Backends)

EXECUTORS: Final[tuple[ExecutorName, ...]] = get_args(ExecutorName)
AGENT_PRESETS: Final[tuple[AgentPreset, ...]] = get_args(AgentPreset)
MODEL_TIERS: Final[tuple[ModelTier, ...]] = get_args(ModelTier)
SCHEDULES: Final[tuple[Schedule, ...]] = get_args(Schedule)
CONFLICT_POLICIES: Final[tuple[ConflictPolicy, ...]] = get_args(ConflictPolicy)
BACKENDS: Final[tuple[BackendName, ...]] = get_args(BackendName)

# A model name an executor is given as is (`claude-sonnet-4-5`, `gpt-5-codex`,
# `openrouter/anthropic/claude-3.5`): no spaces, nothing a shell or a flag would misread.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


def model_choice(word: str) -> str:
    """A tier (any case: `Sonnet` is `sonnet`), or a model name passed through unchanged;
    ValueError for anything else."""
    tier = word.strip().lower()
    if tier in MODEL_TIERS:
        return tier
    if _MODEL_NAME.fullmatch(word.strip()):
        return word.strip()
    raise ValueError(
        f"{word!r} is not a model: write a tier ({', '.join(MODEL_TIERS)}) or a model name "
        "such as claude-sonnet-4-5"
    )
