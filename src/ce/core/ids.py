"""PRP ids and batch ids: what a safe id is, and the one normalizer every reader uses.

Here rather than in `ce.prp.normalize` so that the planner (`ce analyze-deps`) reads ids
without loading the PRP model and its vocabulary.
"""

from __future__ import annotations

import math
import re

ID_PATTERN = re.compile(r"PRP-[A-Za-z0-9][A-Za-z0-9._-]*")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_ID_LENGTH = 100
ID_RULE = (
    "an id is PRP- followed by letters, digits, '.', '_' or '-' (no spaces, '/', '..' or "
    "shell characters), e.g. PRP-43.2.1"
)
ID_PREFIX = "prp-"  # how people write the prefix, in any case
# An id already as normalize_id writes it (the prefix once, then no second one): returned as is,
# which is most ids and saves the steps below on every PRP of a large plan.
_CANONICAL = re.compile(r"PRP-(?![Pp][Rr][Pp]-)[A-Za-z0-9][A-Za-z0-9._-]*")


def normalize_id(raw: object) -> str | None:
    """`PRP-43.2.1` from "43.2.1", 36.2, "prp-43.2.1", "PRP-A"...; None when not a safe id."""
    if (
        type(raw) is str
        and len(raw) <= MAX_ID_LENGTH
        and ".." not in raw
        and _CANONICAL.fullmatch(raw)
    ):
        return raw
    text = id_text(raw)
    if text is None:
        return None
    rest = text.strip()
    while rest[: len(ID_PREFIX)].lower() == ID_PREFIX:
        rest = rest[len(ID_PREFIX) :]
    candidate = f"PRP-{rest}"
    if len(candidate) > MAX_ID_LENGTH or ".." in candidate:
        return None
    return candidate if ID_PATTERN.fullmatch(candidate) else None


def id_text(raw: object) -> str | None:
    """The text of an id as YAML or JSON reads it: a number is its digits."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if 0 <= raw < 10**30 else None
    if isinstance(raw, float):
        return repr(raw) if math.isfinite(raw) else None
    return raw if isinstance(raw, str) else None


def is_safe_token(text: str) -> bool:
    """A batch id or similar: safe in file names, git refs and globs."""
    return len(text) <= MAX_ID_LENGTH and ".." not in text and bool(TOKEN_PATTERN.fullmatch(text))
