"""Dependency graph → stages: topological layering, file conflicts serialized, cycles rejected.

Stage = 1 + the latest stage of the dependencies (Kahn's algorithm, one pass). PRPs whose
declared files overlap never share a stage: taken by dependency depth, then `order` (none
last), then id, each one goes to the first stage from there that no overlapping PRP holds, and
every such move is reported. Overlap: what `ce.core.paths` says a declaration covers (the
matcher the drift check and the sparse cones use too); a literal counts as a directory once
another declared path lies under it. Two globs are compared conservatively
(see `_globs_may_overlap`).

Pure and deterministic: the result depends only on the items' content, never on their input
order or on hash order. Time is linear in the size of the graph, apart from sorting the ids
and the declared paths once each, the globs (each compared only with the paths under its
literal prefix and with the globs whose prefix nests with its own) and, for a moved PRP, the
size of its `because` report. Depths and stages are ordered by bucketing, not by sorting.
"""

from __future__ import annotations

import functools
import operator
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from itertools import count
from types import MappingProxyType
from typing import Any, NamedTuple

from ce.core.errors import CeError
from ce.plan.overlap import Groups, Overlaps


class PlanItem(NamedTuple):  # not a frozen dataclass: a fifth of the cost to build, one per PRP
    id: str
    dependencies: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # repo-relative paths, globs, or directories ending in "/"
    order: int | None = None  # tie-breaker between PRPs of the same depth
    source: str | None = None  # the file the item comes from, for messages


class Move(NamedTuple):
    """A PRP pushed past the stage its dependencies allow, because it shares files."""

    prp: str
    from_stage: int
    to_stage: int
    because: tuple[str, ...]  # the PRPs occupying the stages it skipped


_NO_CONFLICTS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


class Plan(NamedTuple):
    """The records here are NamedTuples, not dataclasses: importing `dataclasses` (and the
    `inspect` it loads) was a quarter of `ce analyze-deps`'s imports."""

    sorted_order: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]  # index 0 is stage 1
    # Each declared path or glob that some other PRP's files overlap → every PRP touching it
    # (declaring it or an overlapping path or glob), in id order. Under a glob or directory,
    # two PRPs listed together may touch different files: the exact paths say who collides.
    file_conflicts: Mapping[str, tuple[str, ...]] = _NO_CONFLICTS
    moves: tuple[Move, ...] = ()  # in the order they were decided

    def stage_index(self) -> dict[str, int]:
        """Each PRP's stage (from 1): build it once to look up many."""
        return {prp: n for n, ids in enumerate(self.stages, start=1) for prp in ids}

    def stage_of(self, prp_id: str) -> int:
        """One PRP's stage; KeyError for an id not in the plan. Linear: see `stage_index`."""
        return self.stage_index()[prp_id]

    def to_json(self) -> dict[str, Any]:
        """The analyzer contract of DESIGN.md."""
        return {
            "sorted_order": list(self.sorted_order),
            "stages": {str(n): list(ids) for n, ids in enumerate(self.stages, start=1)},
            "file_conflicts": {path: list(ids) for path, ids in self.file_conflicts.items()},
            "has_cycles": False,
        }


class CycleError(CeError):
    """The dependencies loop; `cycle` is the path with its first id repeated at the end."""

    def __init__(self, message: str, *, cycle: tuple[str, ...]) -> None:
        super().__init__(message)
        self.cycle = cycle


def plan_stages(items: Sequence[PlanItem]) -> Plan:
    graph = _Graph(items)
    depth = graph.depths()
    overlaps = Overlaps(graph.files())
    ties = graph.tie_order()
    order = [n for layer in _layers(depth, ties) for n in layer]
    stage, moves = _place(order, graph, overlaps)
    stages = tuple(tuple(graph.ids[n] for n in layer) for layer in _layers(stage, ties))
    return Plan(
        sorted_order=tuple(prp_id for layer in stages for prp_id in layer),
        stages=stages,
        file_conflicts=MappingProxyType(overlaps.conflicts(graph.ids)),
        moves=tuple(moves),
    )


def file_conflicts(items: Sequence[PlanItem]) -> dict[str, tuple[str, ...]]:
    """The files (or globs) several items touch, with those items; the graph may have cycles."""
    by_id = _index(items)
    ids = sorted(by_id, key=id_key)
    return Overlaps(by_id[prp_id].files for prp_id in ids).conflicts(ids)


# -- ordering ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)")
_DIGITS = "0123456789"


def id_key(prp_id: str) -> tuple[tuple[int | str, ...], str]:
    """Natural order (PRP-43.2.9 before PRP-43.2.10); the raw id breaks the remaining ties.

    Splitting on digit runs alternates text and digits, so two keys only ever compare text
    with text and numbers with numbers. The ids of a batch differ mostly in their last number:
    what comes before it is split once (`_stem_parts`) and the number appended: a third less
    work than splitting every id."""
    stem = prp_id.rstrip(_DIGITS)
    if len(stem) == len(prp_id):
        return _parts(prp_id), prp_id
    head = _stem_parts(stem)
    if stem and head[-1] == "":  # the stem ends in another kind of digit: one run with ours
        return _parts(prp_id), prp_id
    return (*head, int(prp_id[len(stem) :]), ""), prp_id


def _parts(text: str) -> tuple[int | str, ...]:
    parts: list[int | str] = _NUMBER.split(text)
    for n in range(1, len(parts), 2):
        parts[n] = int(parts[n])
    return tuple(parts)


_stem_parts = functools.lru_cache(maxsize=1024)(_parts)


# -- the graph --------------------------------------------------------------------------------


class _Graph:
    """The items numbered in natural id order, dependencies as numbers, checked.

    The algorithms below work on these numbers: comparing them is comparing ids, and lists
    indexed by them keep large plans compact in memory."""

    def __init__(self, items: Sequence[PlanItem]) -> None:
        by_id = _index(items)
        self.ids = sorted(by_id, key=id_key)
        self.items = [by_id[prp_id] for prp_id in self.ids]
        number = {prp_id: n for n, prp_id in enumerate(self.ids)}
        self.deps = _dependency_numbers(self.items, number)

    def dependents(self) -> Groups:
        """Per item number, the items that depend on it."""
        keys = [dep for its_deps in self.deps for dep in its_deps]
        values = [n for n, its_deps in enumerate(self.deps) for _ in its_deps]
        return Groups.of(len(self.ids), keys, values)

    def files(self) -> list[tuple[str, ...]]:
        return [item.files for item in self.items]

    def tie_order(self) -> list[int]:
        """The item numbers as PRPs of one depth or stage are ordered: by `order` (none last),
        then id. Bucketed by `order`, so only its distinct values are sorted."""
        by_order: dict[int | None, list[int]] = defaultdict(list)
        for n, item in enumerate(self.items):
            by_order[item.order].append(n)  # n ascends: each bucket is in id order
        values = sorted(value for value in by_order if value is not None)
        return [n for value in (*values, None) for n in by_order.get(value, ())]

    def depths(self) -> list[int]:
        """Length of the longest dependency chain ending at each item (Kahn's algorithm)."""
        dependents = self.dependents()
        waiting = [len(its_deps) for its_deps in self.deps]
        ready = deque(n for n, count in enumerate(waiting) if count == 0)
        depth = [1] * len(self.ids)
        while ready:
            done = ready.popleft()
            for n in dependents.group(done):
                depth[n] = max(depth[n], depth[done] + 1)
                waiting[n] -= 1
                if waiting[n] == 0:
                    ready.append(n)
        if any(waiting):
            # Only items with an unresolved dependency are left: they contain a cycle.
            raise self._cycle_error(waiting)
        return depth

    def _cycle_error(self, waiting: Sequence[int]) -> CycleError:
        loop = self._find_cycle(waiting)
        cycle = tuple(self.ids[n] for n in loop)
        sources = [source for n in loop[:-1] if (source := self.items[n].source)]
        where = f" (in {', '.join(sources)})" if sources else ""
        return CycleError(
            f"Dependency cycle: {' → '.join(cycle)}{where}. These PRPs wait for each other, "
            "so none can start: remove one of these dependencies.",
            cycle=cycle,
        )

    def _find_cycle(self, waiting: Sequence[int]) -> list[int]:
        # A stuck item has a stuck dependency, so walking them must come back to a visited one.
        node = min(n for n, count in enumerate(waiting) if count)
        seen: dict[int, int] = {}
        while node not in seen:
            seen[node] = len(seen)
            node = min(d for d in self.deps[node] if waiting[d])
        path = list(seen)
        loop = path[seen[node] :]
        start = loop.index(min(loop))
        loop = loop[start:] + loop[:start]
        return [*loop, loop[0]]


def _where(item: PlanItem) -> str:
    return f"{item.id} ({item.source})" if item.source else item.id


def _index(items: Sequence[PlanItem]) -> dict[str, PlanItem]:
    by_id = {item.id: item for item in items}
    if len(by_id) == len(items):
        return by_id
    by_id = {}
    for item in items:  # the first duplicate, in the input's order
        first = by_id.setdefault(item.id, item)
        if first is not item:
            sources = sorted(str(i.source) for i in (first, item) if i.source)
            places = f" in {' and '.join(sources)}" if sources else ""
            raise CeError(
                f"Duplicate PRP id {item.id}{places}: every PRP needs its own prp_id. "
                "Rename one of them (and update the dependencies that point to it)."
            )
    raise AssertionError("unreachable: fewer ids than items means a duplicate")


def _dependency_numbers(
    items: Sequence[PlanItem], number: Mapping[str, int]
) -> list[tuple[int, ...]]:
    """Per item (in id order), its dependencies' numbers, each once."""
    try:
        found = [tuple(dict.fromkeys(map(number.__getitem__, i.dependencies))) for i in items]
    except KeyError:
        found = []
    if len(found) == len(items) and not any(map(operator.contains, found, count())):
        return found  # every dependency known, and no item among its own
    for item in items:  # the first problem in id order, so it does not depend on input order
        _check_dependencies(item, number)
    raise AssertionError("unreachable: a dependency is unknown or the item's own")


def _check_dependencies(item: PlanItem, number: Mapping[str, int]) -> None:
    if item.id in item.dependencies:
        raise CycleError(
            f"{_where(item)} depends on itself: remove {item.id} from its dependencies.",
            cycle=(item.id, item.id),
        )
    if unknown := list(dict.fromkeys(d for d in item.dependencies if d not in number)):
        raise CeError(
            f"{_where(item)} depends on {', '.join(unknown)}, which is not part of this plan: "
            "add that PRP to the plan, or fix or remove the dependency."
        )


# -- stage placement --------------------------------------------------------------------------


def _place(order: Sequence[int], graph: _Graph, overlaps: Overlaps) -> tuple[list[int], list[Move]]:
    stage = [0] * len(order)
    moves: list[Move] = []
    occupancy = _Occupancy()
    for n in order:
        wanted = 1 + max(map(stage.__getitem__, graph.deps[n]), default=0)
        blocking = overlaps.blocking(n)
        placed = occupancy.first_free(blocking, wanted)
        if placed != wanted:
            because = sorted(occupancy.holders(blocking, range(wanted, placed)))
            moves.append(
                Move(
                    prp=graph.ids[n],
                    from_stage=wanted,
                    to_stage=placed,
                    because=tuple(graph.ids[b] for b in because),
                )
            )
        occupancy.occupy(overlaps.own(n), placed, n)
        stage[n] = placed
    return stage, moves


class _Occupancy:
    """Which stage holds which PRP, per declared file (by number); finds the first stage free
    of several files."""

    def __init__(self) -> None:
        self._holder: dict[int, dict[int, int]] = defaultdict(dict)
        # Per file, union-find over stages: an occupied stage points towards the next free one,
        # so a file many PRPs share costs near-constant time per lookup, not one probe per stage.
        self._next: dict[int, dict[int, int]] = defaultdict(dict)

    def first_free(self, files: Sequence[int], stage: int) -> int:
        """The first stage from `stage` on that none of `files` holds: each file in turn moves
        the stage on to its own next free one, until every file in a row leaves it there (one
        look for a PRP of one file)."""
        free_in_a_row, k = 0, 0
        while free_in_a_row < len(files):
            next_stage = self._next.get(files[k])
            free = stage if next_stage is None else _find_free(next_stage, stage)
            free_in_a_row = free_in_a_row + 1 if free == stage else 1
            stage, k = free, (k + 1) % len(files)
        return stage

    def occupy(self, files: Iterable[int], stage: int, n: int) -> None:
        for file in files:
            self._holder[file][stage] = n
            self._next[file][stage] = stage + 1

    def holders(self, files: Sequence[int], stages: range) -> set[int]:
        return {h for s in stages for f in files if (h := self._holder[f].get(s)) is not None}


def _find_free(next_stage: dict[int, int], stage: int) -> int:
    root = stage
    while root in next_stage:
        root = next_stage[root]
    while stage != root:  # path compression
        next_stage[stage], stage = root, next_stage[stage]
    return root


def _layers(level: Sequence[int], ties: Iterable[int]) -> list[list[int]]:
    """The item numbers grouped by level (depth or stage, from 1), each group in tie order."""
    layers: list[list[int]] = [[] for _ in range(max(level, default=0))]
    for n in ties:
        layers[level[n] - 1].append(n)
    return layers
