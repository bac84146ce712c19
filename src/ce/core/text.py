"""Text from programs made readable: no terminal escape sequences."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_escapes(text: str) -> str:
    """Text without terminal escape sequences (colours, cursor moves, titles)."""
    return _ESCAPE.sub("", text)
