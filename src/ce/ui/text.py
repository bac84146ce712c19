"""User text made safe to show: no terminal escapes, one line."""

from __future__ import annotations

import re
import unicodedata

_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_escapes(text: str) -> str:
    """Text without terminal escape sequences (colours, cursor moves, titles)."""
    return _ESCAPE.sub("", text)


def clean(text: str) -> str:
    """User text on one line: escapes removed, control characters (newlines…) become spaces."""
    text = strip_escapes(text)
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()
