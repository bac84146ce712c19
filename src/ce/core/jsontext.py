"""JSON text indented exactly as `json.dumps(value, indent=2)` writes it, in far less time.

json's indenting encoder is pure Python (only the compact one is in C): for the plans and
summaries ce prints with `--json` (tens of thousands of values for a 10k-PRP dry run) it
was a tenth of the run. Here the containers are laid out in Python and every string goes
through json's C encoder; anything unusual (a non-string key, NaN, another type) is handed to
`json.dumps` itself and re-indented, so the output is always what `json.dumps` would write.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _string  # the C one
from math import isfinite

_INDENT = "  "


def dumps_indented(value: object) -> str:
    """`json.dumps(value, indent=2)`."""
    return _text(value, "\n")


def _text(value: object, newline: str) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and isfinite(value):
        return float.__repr__(value)
    if isinstance(value, list | tuple):
        return _array(value, newline)
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return _object(value, newline)
    # JSON's own words for the rest: non-string keys, NaN and infinities, and its TypeError
    return json.dumps(value, indent=2).replace("\n", newline)


def _array(values: list[object] | tuple[object, ...], newline: str) -> str:
    if not values:
        return "[]"
    inner = newline + _INDENT
    try:
        members = f",{inner}".join(map(_string, values))  # type: ignore[arg-type]  # ids, paths
    except TypeError:  # not all strings
        members = f",{inner}".join(_text(value, inner) for value in values)
    return f"[{inner}{members}{newline}]"


def _object(members: dict[str, object], newline: str) -> str:
    if not members:
        return "{}"
    inner = newline + _INDENT
    text = f",{inner}".join(
        f"{_string(key)}: {_text(value, inner)}" for key, value in members.items()
    )
    return f"{{{inner}{text}{newline}}}"
