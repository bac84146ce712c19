"""The speculative merge lane's rules (issue 17), pure: which group to build next and on what,
what a check's result discards, and the bisection order of a failed batch.

The lane keeps a *line*: groups of branches in merge order, each group merged one branch after
another on the tip of the group before it (the first on the target), its last tree checked.
Only the line's head may land, and only once its check passed; a failed or conflicting group
of one branch is rejected when it reaches the head (its base is then the target itself). A
result that rules a group out discards every group built on it; they are built again, in the
same order and grouping, on what is left. A failed group of several branches is split: in two
halves when its tree failed, around the branch that conflicted otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace


class Check(enum.Enum):
    RUNNING = "running"  # its merged tree is being checked
    PASSED = "passed"
    FAILED = "failed"
    CONFLICT = "conflict"  # one of its branches did not merge (`culprit`)


RULED_OUT = frozenset({Check.FAILED, Check.CONFLICT})


@dataclass(frozen=True, kw_only=True)
class Slot:
    prps: tuple[str, ...]
    check: Check = Check.RUNNING
    culprit: int = 0  # CONFLICT: the place in `prps` of the branch that conflicted


@dataclass(frozen=True, kw_only=True)
class Rebuild:
    """After a result: the line keeps its first `keep` slots; `groups` are built again, in
    this order, before anything not built yet."""

    keep: int
    groups: tuple[tuple[str, ...], ...] = ()


class Head(enum.Enum):
    WAIT = "wait"  # its check is running
    LAND = "land"  # passed: the target moves to its tip (one compare-and-swap)
    REJECT = "reject"  # one branch whose tree failed or which conflicts on the target


def head(line: Sequence[Slot]) -> Head | None:
    """What the line's head calls for (None: the line is empty)."""
    if not line:
        return None
    if line[0].check is Check.PASSED:
        return Head.LAND
    if line[0].check in RULED_OUT:
        return Head.REJECT
    return Head.WAIT


def base_of_next(line: Sequence[Slot]) -> int | None:
    """The slot whose tip the next group is built on (None: the target): the last one that
    may still land."""
    for index in range(len(line) - 1, -1, -1):
        if line[index].check not in RULED_OUT:
            return index
    return None


def room(line: Sequence[Slot], parallel: int) -> bool:
    """Whether one more tree may be checked now (at most `parallel` at once)."""
    return sum(slot.check is Check.RUNNING for slot in line) < parallel


def after_result(line: Sequence[Slot], index: int, slot: Slot) -> Rebuild:
    """Slot `index` got its result `slot.check`: what stays and what is built again."""
    if slot.check is Check.PASSED or slot.check is Check.RUNNING:
        return Rebuild(keep=len(line))
    later = tuple(s.prps for s in line[index + 1 :])  # built on its tip, which cannot land
    if len(slot.prps) == 1:
        return Rebuild(keep=index + 1, groups=later)  # it stays, to be rejected at the head
    return Rebuild(keep=index, groups=(*split(slot), *later))


def after_move(line: Sequence[Slot]) -> Rebuild:
    """The target moved under the lane (or refused to move): everything is built again."""
    return Rebuild(keep=0, groups=tuple(s.prps for s in line))


def split(slot: Slot) -> tuple[tuple[str, ...], ...]:
    """Bisection: a failed tree's group in two halves (the first the larger); a conflicting
    group as the branches before the culprit, the culprit alone, and those after it."""
    prps = slot.prps
    pieces: tuple[tuple[str, ...], ...]
    if slot.check is Check.CONFLICT:
        at = slot.culprit
        pieces = (prps[:at], prps[at : at + 1], prps[at + 1 :])
    else:
        half = (len(prps) + 1) // 2
        pieces = (prps[:half], prps[half:])
    return tuple(piece for piece in pieces if piece)


def result(slot: Slot, *, passed: bool) -> Slot:
    return replace(slot, check=Check.PASSED if passed else Check.FAILED)


def defaults(merge_parallel: int | None, cores: int | None) -> int:
    """`merge_parallel` unset: 4 trees checked at once, or as many as the machine has cores."""
    if merge_parallel is not None:
        return merge_parallel
    return max(1, min(4, cores or 1))
