"""ce: execute a batch of PRPs in parallel with coding agents and merge the results safely."""

from __future__ import annotations

__version__ = "0.1.0"
