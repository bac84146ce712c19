"""Which PRPs a retry names, the branches that keep earlier attempts, and what the journal says
of retries: pure rules, as data."""

from __future__ import annotations

import pytest

from ce.core.errors import CeError
from ce.run.retry_request import Retries, attempt_branch, journal_retries, requested

STAGES = (("PRP-1.1",), ("PRP-2.1", "PRP-2.2", "PRP-2.3"), ("PRP-3.1",))


def ask(names: tuple[str, ...], stage: int | None = None, *, whole: bool = False) -> object:
    done = {"PRP-1.1": "PRPs/PRP-1.1.md", "PRP-2.3": "PRPs/PRP-2.3.md"}
    try:
        return requested(names, stage=stage, whole_stage=whole, stages=STAGES, done=done, batch="1")
    except CeError as exc:
        return str(exc)


@pytest.mark.parametrize(
    ("names", "stage", "whole", "expected"),
    [
        (("2.2", "PRP-2.1"), None, False, ("PRP-2.1", "PRP-2.2")),  # plan order, both forms
        (("2.1", "2.1"), None, False, ("PRP-2.1",)),
        ((), 2, True, ("PRP-2.1", "PRP-2.2")),  # the stage's PRPs not done
        (("3.1",), 2, True, "--retry-prp 3.1: PRP-3.1 is in stage 3, not stage 2."),
        ((), None, True, "--retry runs again every unmerged PRP of one stage"),
        (("9.9",), None, False, "--retry-prp 9.9: no such PRP in batch 1 (its PRPs: PRP-1.1, "),
        (("../x",), None, False, "--retry-prp ../x: no such PRP"),
        (("1.1",), None, False, "--retry-prp PRP-1.1: it is completed (PRPs/PRP-1.1.md says so)"),
    ],
)
def test_requested(
    names: tuple[str, ...], stage: int | None, whole: bool, expected: object
) -> None:
    found = ask(names, stage, whole=whole)
    if isinstance(expected, str):
        assert isinstance(found, str) and found.startswith(expected)
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "b-attempt-1"),
        (["b-attempt-1", "b-attempt-3", "b-attempt-x", "c-attempt-9"], "b-attempt-4"),
        (["b-conflict-1"], "b-attempt-1"),
    ],
)
def test_attempt_branch(existing: list[str], expected: str) -> None:
    assert attempt_branch("b", existing) == expected


def retry(prp: str, kept: str) -> dict[str, object]:
    return {"intent": "retry", "prp": prp, "branch": "b", "kept": kept}


def retried(prp: str, kept: str) -> dict[str, object]:
    return {"fact": "retried", "prp": prp, "kept": kept}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], Retries()),
        ([retry("A", "b-attempt-1")], Retries(unfinished={"A": ("b", "b-attempt-1")})),
        (
            [retry("A", "k1"), retried("A", "k1"), retry("A", "k2"), retried("A", "k2")],
            Retries(kept={"A": ("k1", "k2")}),
        ),
        (  # a run killed after its fact, then finished again: each named once
            [retry("A", "k1"), retried("A", "k1"), retried("A", "k1")],
            Retries(kept={"A": ("k1",)}),
        ),
        (  # a batch started afresh since: the earlier run's retries are not this run's
            [retry("A", "k1"), retried("A", "k1"), {"fact": "start", "resume": False}],
            Retries(),
        ),
        (
            [
                {"fact": "start", "resume": False},
                retry("A", "k1"),
                {"fact": "start", "resume": True},
            ],
            Retries(unfinished={"A": ("b", "k1")}),
        ),
        ([{"intent": "retry", "prp": "A"}, {"fact": "retried", "prp": 3, "kept": "k"}], Retries()),
    ],
)
def test_journal_retries(entries: list[dict[str, object]], expected: Retries) -> None:
    assert journal_retries(entries) == expected
