"""The speculative lane's rules as data: what lands, what is rejected, what is built again on
what, and the bisection order of a failed batch."""

from __future__ import annotations

import pytest

from ce.run import speculate
from ce.run.speculate import Check, Head, Rebuild, Slot

R, P, F, C = Check.RUNNING, Check.PASSED, Check.FAILED, Check.CONFLICT


def line(*slots: tuple[str | tuple[str, ...], Check]) -> list[Slot]:
    return [Slot(prps=tuple(prps), check=check) for prps, check in slots]


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ([], None),
        ([("a", R), ("b", P)], Head.WAIT),  # b passed on a's tip: it waits for a
        ([("a", P), ("b", R)], Head.LAND),
        ([("a", F), ("b", P)], Head.REJECT),  # b was built again on a's base
        ([("a", C)], Head.REJECT),
    ],
)
def test_the_head_lands_only_once_it_passed(
    slots: list[tuple[str | tuple[str, ...], Check]], expected: Head | None
) -> None:
    assert speculate.head(line(*slots)) is expected


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ([], None),  # the target
        ([("a", R)], 0),
        ([("a", R), ("b", P)], 1),
        ([("a", R), ("b", F)], 0),  # a failed slot waits to be rejected: built past it
        ([("a", F)], None),
        ([("a", C), ("b", R), ("c", C)], 1),
    ],
)
def test_the_next_group_builds_on_the_last_that_may_land(
    slots: list[tuple[str | tuple[str, ...], Check]], expected: int | None
) -> None:
    assert speculate.base_of_next(line(*slots)) == expected


@pytest.mark.parametrize(
    ("slots", "parallel", "room"),
    [([], 1, True), ([("a", R)], 1, False), ([("a", P), ("b", R)], 2, True), ([("a", R)], 4, True)],
)
def test_at_most_merge_parallel_trees_are_checked_at_once(
    slots: list[tuple[str | tuple[str, ...], Check]], parallel: int, room: bool
) -> None:
    assert speculate.room(line(*slots), parallel) is room


ABCD = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("slots", "index", "result", "expected"),
    [
        # Passed: nothing moves.
        ([("a", R), ("b", R)], 1, Slot(prps=("b",), check=P), Rebuild(keep=2)),
        # N fails: every speculation built on it is built again (on N's base).
        (
            [("a", R), ("b", R), ("c", R)],
            0,
            Slot(prps=("a",), check=F),
            Rebuild(keep=1, groups=(("b",), ("c",))),
        ),
        # A failure in the middle keeps what is before it.
        (
            [("a", R), ("b", R), ("c", P)],
            1,
            Slot(prps=("b",), check=F),
            Rebuild(keep=2, groups=(("c",),)),
        ),
        # A batch's tree fails: bisected, the halves first, then what was built on it.
        (
            [(ABCD, R), (("e", "f"), R)],
            0,
            Slot(prps=ABCD, check=F),
            Rebuild(keep=0, groups=(("a", "b"), ("c", "d"), ("e", "f"))),
        ),
        # Odd sizes: the first half is the larger one.
        (
            [(("a", "b", "c"), R)],
            0,
            Slot(prps=("a", "b", "c"), check=F),
            Rebuild(keep=0, groups=(("a", "b"), ("c",))),
        ),
        # A conflict inside a batch: before it, the culprit alone, after it.
        (
            [("x", P), (ABCD, R)],
            1,
            Slot(prps=ABCD, check=C, culprit=2),
            Rebuild(keep=1, groups=(("a", "b"), ("c",), ("d",))),
        ),
        (
            [(ABCD, R)],
            0,
            Slot(prps=ABCD, check=C, culprit=0),
            Rebuild(keep=0, groups=(("a",), ("b", "c", "d"))),
        ),
        # A conflict of one branch: it stays (rejected at the head), the rest builds again.
        (
            [("a", R), ("b", R), ("c", R)],
            1,
            Slot(prps=("b",), check=C),
            Rebuild(keep=2, groups=(("c",),)),
        ),
    ],
)
def test_what_a_result_discards_and_builds_again(
    slots: list[tuple[str | tuple[str, ...], Check]], index: int, result: Slot, expected: Rebuild
) -> None:
    assert speculate.after_result(line(*slots), index, result) == expected


def test_when_the_target_moves_everything_is_built_again_in_order() -> None:
    slots = line(("a", P), (("b", "c"), R), ("d", F))
    assert speculate.after_move(slots) == Rebuild(keep=0, groups=(("a",), ("b", "c"), ("d",)))


def bisect(prps: tuple[str, ...], culprits: set[str]) -> tuple[list[str], list[str], int]:
    """Run the rules to the end on one batch whose tree fails when it holds a culprit: what
    lands (in order), what is rejected, and how many trees were checked."""
    pending: list[tuple[str, ...]] = [prps]
    landed: list[str] = []
    rejected: list[str] = []
    checks = 0
    while pending:
        group = pending.pop(0)
        checks += 1
        slot = speculate.result(Slot(prps=group), passed=not culprits & set(group))
        if slot.check is Check.PASSED:
            landed += group
            continue
        rebuild = speculate.after_result([slot], 0, slot)
        if rebuild.keep:
            rejected += group
        pending[:0] = rebuild.groups
    return landed, rejected, checks


@pytest.mark.parametrize(
    ("culprits", "landed", "rejected", "checks"),
    [
        (set(), list("abcdefgh"), [], 1),
        ({"c"}, list("abdefgh"), ["c"], 7),
        ({"a", "h"}, list("bcdefg"), ["a", "h"], 11),
        (set("abcdefgh"), [], list("abcdefgh"), 15),
    ],
)
def test_bisection_finds_the_culprits_and_merges_the_rest_in_order(
    culprits: set[str], landed: list[str], rejected: list[str], checks: int
) -> None:
    assert bisect(tuple("abcdefgh"), culprits) == (landed, rejected, checks)


@pytest.mark.parametrize(
    ("configured", "cores", "expected"),
    [(None, 8, 4), (None, 2, 2), (None, None, 1), (None, 1, 1), (1, 8, 1), (6, 2, 6)],
)
def test_merge_parallel_defaults_to_four_or_the_cores(
    configured: int | None, cores: int | None, expected: int
) -> None:
    assert speculate.defaults(configured, cores) == expected
