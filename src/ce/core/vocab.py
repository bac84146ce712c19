"""The words a user picks from: executors, model tiers, schedules, conflict policies.

Each list is written once, here; the configuration's validation and the command line's
choices are derived from it, so a new executor or policy cannot be accepted by one and
refused by the other.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

ExecutorName = Literal["script", "command", "claude", "codex", "gemini", "aider"]
AgentPreset = Literal["claude", "codex", "gemini", "aider"]  # the executors that are agent CLIs
ModelTier = Literal["haiku", "sonnet", "opus"]  # cheapest first
Schedule = Literal["stages", "eager"]
ConflictPolicy = Literal["pause", "agent", "rerun"]

EXECUTORS: Final[tuple[ExecutorName, ...]] = get_args(ExecutorName)
AGENT_PRESETS: Final[tuple[AgentPreset, ...]] = get_args(AgentPreset)
MODEL_TIERS: Final[tuple[ModelTier, ...]] = get_args(ModelTier)
SCHEDULES: Final[tuple[Schedule, ...]] = get_args(Schedule)
CONFLICT_POLICIES: Final[tuple[ConflictPolicy, ...]] = get_args(ConflictPolicy)
