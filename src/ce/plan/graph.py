"""Dependency graph → stages: topological layering, file conflicts serialized, cycles rejected.

Stage = 1 + the latest stage of the dependencies (Kahn's algorithm, one pass). PRPs whose
declared files overlap never share a stage: taken by dependency depth, then `order` (none
last), then id, each one goes to the first stage from there that no overlapping PRP holds, and
every such move is reported. Overlap: normalized paths; globs (`*`, `?`, `[...]` within one
directory, `**` across); a trailing `/` covers everything beneath. Two globs are compared
conservatively (see `_globs_may_overlap`).

Pure and deterministic: the result depends only on the items' content, never on their input
order or on hash order. Time is linear in the size of the graph, apart from sorting the ids
once, the globs (each compared with the paths under its literal prefix and with the other
globs) and, for a moved PRP, the size of its `because` report.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from posixpath import normpath
from types import MappingProxyType
from typing import Any

from ce.errors import CeError

_GLOB_CHARS = "*?["


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanItem:
    id: str
    dependencies: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # repo-relative paths, globs, or directories ending in "/"
    order: int | None = None  # tie-breaker between PRPs of the same depth
    source: str | None = None  # the file the item comes from, for messages


@dataclass(frozen=True, kw_only=True, slots=True)
class Move:
    """A PRP pushed past the stage its dependencies allow, because it shares files."""

    prp: str
    from_stage: int
    to_stage: int
    because: tuple[str, ...]  # the PRPs occupying the stages it skipped


def _frozen_conflicts() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Plan:
    sorted_order: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]  # index 0 is stage 1
    # Each declared path or glob that some other PRP's files overlap → every PRP touching it
    # (declaring it or an overlapping path or glob), in id order. Under a glob or directory,
    # two PRPs listed together may touch different files: the exact paths say who collides.
    file_conflicts: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen_conflicts)
    moves: tuple[Move, ...] = ()  # in the order they were decided

    @cached_property
    def _stage_index(self) -> Mapping[str, int]:
        return {prp: n for n, ids in enumerate(self.stages, start=1) for prp in ids}

    def stage_of(self, prp_id: str) -> int:
        return self._stage_index[prp_id]

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
    overlaps = _Overlaps(graph.files())
    tie = graph.tie_breakers()
    order = sorted(range(len(graph.ids)), key=lambda n: (depth[n], tie[n]))
    stage, moves = _place(order, graph, overlaps)
    stages = tuple(tuple(graph.ids[n] for n in layer) for layer in _layers(stage, tie))
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
    return _Overlaps(by_id[prp_id].files for prp_id in ids).conflicts(ids)


# -- ordering ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)")


def id_key(prp_id: str) -> tuple[tuple[int | str, ...], str]:
    """Natural order (PRP-43.2.9 before PRP-43.2.10); the raw id breaks the remaining ties.

    Splitting on digit runs alternates text and digits, so two keys only ever compare text
    with text and numbers with numbers."""
    parts: list[int | str] = list(_NUMBER.split(prp_id))
    parts[1::2] = [int(digits) for digits in parts[1::2]]
    return tuple(parts), prp_id


# -- the graph --------------------------------------------------------------------------------


class _Graph:
    """The items numbered in natural id order, dependencies as numbers, checked.

    The algorithms below work on these numbers: comparing them is comparing ids, and lists
    indexed by them keep large plans compact in memory."""

    def __init__(self, items: Iterable[PlanItem]) -> None:
        by_id = _index(items)
        self.ids = sorted(by_id, key=id_key)
        self.items = [by_id[prp_id] for prp_id in self.ids]
        number = {prp_id: n for n, prp_id in enumerate(self.ids)}
        # In id order, so the first problem reported does not depend on the input order.
        self.deps = [_dependency_numbers(item, number) for item in self.items]

    def files(self) -> list[tuple[str, ...]]:
        return [item.files for item in self.items]

    def tie_breakers(self) -> list[tuple[bool, int, int]]:
        """Between PRPs of one depth or stage: `order` (none last), then id."""
        return [(i.order is None, i.order or 0, n) for n, i in enumerate(self.items)]

    def depths(self) -> list[int]:
        """Length of the longest dependency chain ending at each item (Kahn's algorithm)."""
        dependents: list[list[int]] = [[] for _ in self.ids]
        for n, its_deps in enumerate(self.deps):
            for dep in its_deps:
                dependents[dep].append(n)
        waiting = [len(its_deps) for its_deps in self.deps]
        ready = deque(n for n, count in enumerate(waiting) if count == 0)
        depth = [1] * len(self.ids)
        while ready:
            done = ready.popleft()
            for n in dependents[done]:
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


def _index(items: Iterable[PlanItem]) -> dict[str, PlanItem]:
    by_id: dict[str, PlanItem] = {}
    for item in items:
        first = by_id.setdefault(item.id, item)
        if first is not item:
            sources = sorted(str(i.source) for i in (first, item) if i.source)
            places = f" in {' and '.join(sources)}" if sources else ""
            raise CeError(
                f"Duplicate PRP id {item.id}{places}: every PRP needs its own prp_id. "
                "Rename one of them (and update the dependencies that point to it)."
            )
    return by_id


def _dependency_numbers(item: PlanItem, number: Mapping[str, int]) -> list[int]:
    deps = dict.fromkeys(item.dependencies)
    if item.id in deps:
        raise CycleError(
            f"{_where(item)} depends on itself: remove {item.id} from its dependencies.",
            cycle=(item.id, item.id),
        )
    unknown = [d for d in deps if d not in number]
    if unknown:
        raise CeError(
            f"{_where(item)} depends on {', '.join(unknown)}, which is not part of this plan: "
            "add that PRP to the plan, or fix or remove the dependency."
        )
    return [number[d] for d in deps]


# -- stage placement --------------------------------------------------------------------------


def _place(
    order: Sequence[int], graph: _Graph, overlaps: _Overlaps
) -> tuple[list[int], list[Move]]:
    stage = [0] * len(order)
    moves: list[Move] = []
    occupancy = _Occupancy()
    for n in order:
        wanted = 1 + max((stage[d] for d in graph.deps[n]), default=0)
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
    """Which stage holds which PRP, per declared file; finds the first stage free of them all."""

    def __init__(self) -> None:
        self._holder: dict[str, dict[int, int]] = defaultdict(dict)
        # Per file, union-find over stages: an occupied stage points towards the next free one,
        # so a file many PRPs share costs near-constant time per lookup, not one probe per stage.
        self._next: dict[str, dict[int, int]] = defaultdict(dict)

    def first_free(self, files: Sequence[str], stage: int) -> int:
        moved = True
        while moved:
            moved = False
            for path in files:
                next_stage = self._next.get(path)
                free = stage if next_stage is None else _find_free(next_stage, stage)
                if free != stage:
                    stage, moved = free, True
        return stage

    def occupy(self, files: Iterable[str], stage: int, n: int) -> None:
        for path in files:
            self._holder[path][stage] = n
            self._next[path][stage] = stage + 1

    def holders(self, files: Sequence[str], stages: range) -> set[int]:
        return {h for s in stages for f in files if (h := self._holder[f].get(s)) is not None}


def _find_free(next_stage: dict[int, int], stage: int) -> int:
    root = stage
    while root in next_stage:
        root = next_stage[root]
    while stage != root:  # path compression
        next_stage[stage], stage = root, next_stage[stage]
    return root


def _layers(stage: Sequence[int], tie: Sequence[tuple[bool, int, int]]) -> list[list[int]]:
    layers: list[list[int]] = [[] for _ in range(max(stage, default=0))]
    for n, number in enumerate(stage):
        layers[number - 1].append(n)
    return [sorted(layer, key=tie.__getitem__) for layer in layers]


# -- file overlap -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """A declared file: an exact path, or a glob (a trailing "/" directory is `dir/**`)."""

    text: str
    is_glob: bool
    prefix: str  # literal text before the first wildcard
    suffix: str  # literal text after the last wildcard
    match: Callable[[str], object]


_NEEDS_NORMALIZING = re.compile(r"(^|/)\.{1,2}(/|$)|//|\\|^\s|\s$")


def normalize_path(path: str) -> str:
    """Repo-relative POSIX form: `./`, `//` and `/.` removed; a directory keeps its `/`."""
    if not _NEEDS_NORMALIZING.search(path):
        return path
    text = path.strip().replace("\\", "/")
    if not text:
        return ""
    normal = normpath(text)
    if normal == ".":
        return "**"
    return f"{normal}/" if text.endswith("/") else normal


def _pattern(text: str) -> _Pattern:
    glob = f"{text}**" if text.endswith("/") else text
    first = min((i for i in (glob.find(c) for c in _GLOB_CHARS) if i >= 0), default=len(glob))
    if first == len(glob):
        return _Pattern(text, False, text, text, text.__eq__)
    last = max(glob.rfind(c) for c in "*?[]")
    return _Pattern(text, True, glob[:first], glob[last + 1 :], _glob_regex(glob).fullmatch)


def _glob_regex(glob: str) -> re.Pattern[str]:
    """`*` and `?` stay within one directory, `**` crosses directories, `[...]` is a class."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and (end := glob.find("]", i + 2)) > 0:
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def _globs_may_overlap(a: _Pattern, b: _Pattern) -> bool:
    """Conservative: a path both could match must start with both literal prefixes and end
    with both literal suffixes, so overlap is assumed unless the prefixes or the suffixes
    differ. (One glob matching the other's text implies nested prefixes, so it is covered.)
    Over-reporting only serializes two PRPs that could have run side by side; missing an
    overlap would let them conflict at merge time."""
    prefixes_nest = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes_nest = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes_nest and suffixes_nest


class _Overlaps:
    """Which declared files overlap. Exact paths are indexed by a dict; only globs are
    compared with others, and a glob only with the paths sharing its literal prefix."""

    def __init__(self, files: Iterable[Iterable[str]]) -> None:
        self._own: list[tuple[str, ...]] = []  # per item number: its normalized files
        self._users: dict[str, list[int]] = defaultdict(list)
        for n, its_files in enumerate(files):
            paths = tuple(sorted({p for p in map(normalize_path, its_files) if p}))
            self._own.append(paths)
            for path in paths:
                self._users[path].append(n)
        self._near = self._glob_neighbours()

    def _glob_neighbours(self) -> dict[str, list[str]]:
        patterns = [_pattern(text) for text in sorted(self._users)]
        globs = [p for p in patterns if p.is_glob]
        exact = sorted(p.text for p in patterns if not p.is_glob)
        near: dict[str, list[str]] = defaultdict(list)
        for n, glob in enumerate(globs):
            for path in _with_prefix(exact, glob.prefix):
                if glob.match(path):
                    near[glob.text].append(path)
                    near[path].append(glob.text)
            for other in globs[n + 1 :]:
                if _globs_may_overlap(glob, other):
                    near[glob.text].append(other.text)
                    near[other.text].append(glob.text)
        return near

    def own(self, n: int) -> tuple[str, ...]:
        return self._own[n]

    def blocking(self, n: int) -> tuple[str, ...]:
        """The declared files whose holders a PRP must not share a stage with."""
        own = self._own[n]
        if not any(path in self._near for path in own):
            return own
        return tuple(sorted({*own, *(n for path in own for n in self._near.get(path, ()))}))

    def conflicts(self, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each declared file or glob that several PRPs touch (directly or by overlap)."""
        found: dict[str, tuple[str, ...]] = {}
        shared = (p for p, users in self._users.items() if len(users) > 1 or p in self._near)
        for path in sorted(shared):
            touching = self._users[path]  # each item once, in number (= id) order
            if path in self._near:
                near = self._near[path]
                touching = sorted({*touching, *(u for p in near for u in self._users[p])})
            if len(touching) > 1:
                found[path] = tuple(ids[n] for n in touching)
        return found


def _with_prefix(sorted_paths: Sequence[str], prefix: str) -> Iterator[str]:
    for i in range(bisect_left(sorted_paths, prefix), len(sorted_paths)):
        if not sorted_paths[i].startswith(prefix):
            return
        yield sorted_paths[i]
