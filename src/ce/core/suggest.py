""" "Did you mean …?": the closest known word to a mistyped one, for every error that names
a word the user wrote (a dependency id, a frontmatter key, a batch number).

Pure and deterministic: candidates are compared in sorted order, so the same typo gets the
same suggestion whatever the hash seed or the order the candidates came in.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75  # close enough that the suggestion is a typo's fix, not a guess


def closest(word: str, known: Iterable[str], *, cutoff: float = CUTOFF) -> str | None:
    """The known word closest to `word` (case-insensitive), or None when none is close."""
    by_folded: dict[str, str] = {}
    for candidate in sorted(set(known)):
        by_folded.setdefault(candidate.casefold(), candidate)
    if word.casefold() in by_folded:
        return by_folded[word.casefold()]
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], *, cutoff: float = CUTOFF) -> str:
    """` (did you mean `X`?)` to append to an error about `word`, or "" when nothing is close."""
    match = closest(word, known, cutoff=cutoff)
    return f" (did you mean `{match}`?)" if match is not None and match != word else ""
