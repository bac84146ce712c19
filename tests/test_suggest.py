"""The one "did you mean" helper: the closest known word, deterministic, or nothing."""

from __future__ import annotations

import pytest

from ce.core.suggest import closest, did_you_mean

KEYS = ("dependencies", "files_modified", "status", "title", "validation", "depends_on")


@pytest.mark.parametrize(
    ("typo", "known"),
    [
        ("dependancies", "dependencies"),
        ("files_modifed", "files_modified"),
        ("Staus", "status"),
        ("TITLE", "title"),
    ],
)
def test_a_close_typo_gets_the_known_word(typo: str, known: str) -> None:
    assert closest(typo, KEYS) == known


def test_nothing_close_gets_nothing() -> None:
    assert closest("owner", KEYS) is None
    assert did_you_mean("owner", KEYS) == ""


def test_the_suggestion_is_words_to_append() -> None:
    assert did_you_mean("PRP-43.2.2", ["PRP-43.2.1", "PRP-43.1.1"]) == (
        " (did you mean `PRP-43.2.1`?)"
    )


def test_the_same_whatever_the_order_of_the_candidates() -> None:
    ids = ["PRP-1.1.2", "PRP-1.1.3", "PRP-1.2.1"]
    assert closest("PRP-1.1.4", ids) == closest("PRP-1.1.4", list(reversed(ids)))
