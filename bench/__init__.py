"""Benchmarks (`uv run python -m bench`): figures to read, not timed tests."""

from __future__ import annotations

from typing import NamedTuple


class Row(NamedTuple):
    name: str
    figures: str  # what was measured, e.g. "1k: 0.010 s, 10k: 0.110 s"
    ratio: str  # how it scales, with the limit it must stay under
    verdict: str  # "ok", "OVER" the limit, or "" for a row given for information
