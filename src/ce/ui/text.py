"""User text made safe to show: no terminal escapes, one line."""

from __future__ import annotations

import unicodedata

from ce.core.text import strip_escapes

__all__ = ["clean", "strip_escapes"]


def clean(text: str) -> str:
    """User text on one line: escapes removed, control characters (newlines…) become spaces."""
    text = strip_escapes(text)
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()
