"""Text that reached us from a PRP, an agent or a log, made safe for XML and HTML: no terminal
escapes, no control bytes, escaped for the page."""

from __future__ import annotations

import html
import re

from ce.ui.text import strip_escapes

LOG_TAIL_LINES = 40
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean_text(text: str) -> str:
    """Log and agent text made safe for XML and HTML: no terminal escapes, no control bytes."""
    return _NOT_XML.sub("", strip_escapes(text))


def tail_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(clean_text(text).splitlines()[-lines:])


def escape(value: object) -> str:
    """Any value as HTML text or attribute."""
    return html.escape(clean_text(str(value)), quote=True)
