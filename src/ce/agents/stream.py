"""Reading agents' JSON-lines output (Claude Code, Codex, Gemini CLI) and pricing their tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Event = dict[str, Any]

# USD per million (input, output) tokens, list prices of the pinned CLIs' usual models. Used only
# when a CLI reports tokens but no cost; the longest matching prefix of the model name wins.
PRICES_PER_MTOK: Mapping[str, tuple[float, float]] = {
    "claude-opus": (15.0, 75.0),
    "claude-sonnet": (3.0, 15.0),
    "claude-haiku": (1.0, 5.0),
    "opus": (15.0, 75.0),
    "sonnet": (3.0, 15.0),
    "haiku": (1.0, 5.0),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "o3": (2.0, 8.0),
    "o4-mini": (1.1, 4.4),
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.3, 2.5),
    "gemini-2.5-flash-lite": (0.1, 0.4),
}


def json_events(output: str) -> Iterator[Event]:
    """The JSON objects among the output's lines; other lines (stderr, `ce`'s notes) are skipped."""
    for line in output.splitlines():
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def last(events: Iterable[Event], kind: str, key: str = "type") -> Event | None:
    found = None
    for event in events:
        if event.get(key) == kind:
            found = event
    return found


def as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def estimate_cost(model: str | None, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for these tokens at list price, or None for a model the table does not know."""
    if not model:
        return None
    name = model.lower().rsplit("/", 1)[-1]
    matches = [prefix for prefix in PRICES_PER_MTOK if name.startswith(prefix)]
    if not matches:
        return None
    per_input, per_output = PRICES_PER_MTOK[max(matches, key=len)]
    return round((input_tokens * per_input + output_tokens * per_output) / 1_000_000, 6)


def short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
