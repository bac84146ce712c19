"""Dependency graph → stages: topological layering, file conflicts serialized, cycles rejected.

Pure and deterministic: the result depends only on the items' content, never on their input
order or on hash order. Time is linear in the size of the graph apart from sorting the ids once
(and, for each moved PRP, the size of its `because` report).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from posixpath import normpath
from types import MappingProxyType
from typing import Any

from ce.errors import CeError

_GLOB_CHARS = "*?["


@dataclass(frozen=True, kw_only=True)
class PlanItem:
    id: str
    dependencies: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # repo-relative paths, globs, or directories ending in "/"
    order: int | None = None  # tie-breaker between PRPs of the same depth
    source: str | None = None  # the file the item comes from, for messages


@dataclass(frozen=True, kw_only=True)
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
    file_conflicts: Mapping[str, tuple[str, ...]] = field(default_factory=_frozen_conflicts)
    moves: tuple[Move, ...] = ()

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
    by_id = _index(items)
    deps = {item.id: _unique(item.dependencies) for item in by_id.values()}
    _check_dependencies(by_id, deps)
    depth = _depths(by_id, deps)
    overlaps = _Overlaps(by_id.values())
    order = sorted(by_id, key=lambda i: (depth[i], *_order_key(by_id[i])))
    stage, moves = _place(order, deps, overlaps)
    layers = _layers(stage, by_id)
    return Plan(
        sorted_order=tuple(i for layer in layers for i in layer),
        stages=layers,
        file_conflicts=MappingProxyType(overlaps.conflicts()),
        moves=tuple(moves),
    )


def file_conflicts(items: Sequence[PlanItem]) -> dict[str, tuple[str, ...]]:
    """The files (or globs) several items touch, with those items; needs no valid graph."""
    return _Overlaps(items).conflicts()


# -- ordering ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"(\d+)")


def id_key(prp_id: str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Natural order (PRP-43.2.9 before PRP-43.2.10); the raw id breaks the remaining ties."""
    parts = tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _NUMBER.split(prp_id) if part
    )
    return parts, prp_id


def _order_key(item: PlanItem) -> tuple[bool, int, tuple[Any, ...]]:
    return item.order is None, item.order or 0, id_key(item.id)


# -- validation -------------------------------------------------------------------------------


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


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _check_dependencies(by_id: Mapping[str, PlanItem], deps: Mapping[str, tuple[str, ...]]) -> None:
    for prp_id in sorted(by_id, key=id_key):
        item = by_id[prp_id]
        if prp_id in deps[prp_id]:
            raise CycleError(
                f"{_where(item)} depends on itself: remove {prp_id} from its dependencies.",
                cycle=(prp_id, prp_id),
            )
        unknown = [d for d in deps[prp_id] if d not in by_id]
        if unknown:
            raise CeError(
                f"{_where(item)} depends on {', '.join(unknown)}, which is not part of this plan: "
                "add that PRP to the plan, or fix or remove the dependency."
            )


# -- topological depth (Kahn) -----------------------------------------------------------------


def _depths(by_id: Mapping[str, PlanItem], deps: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Length of the longest dependency chain ending at each item (1 = no dependencies)."""
    dependents: dict[str, list[str]] = defaultdict(list)
    for prp_id, its_deps in deps.items():
        for dep in its_deps:
            dependents[dep].append(prp_id)
    waiting = {prp_id: len(its_deps) for prp_id, its_deps in deps.items()}
    ready = deque(prp_id for prp_id, count in waiting.items() if count == 0)
    depth = dict.fromkeys(ready, 1)
    while ready:
        done = ready.popleft()
        for prp_id in dependents[done]:
            depth[prp_id] = max(depth.get(prp_id, 1), depth[done] + 1)
            waiting[prp_id] -= 1
            if waiting[prp_id] == 0:
                ready.append(prp_id)
    if len(depth) < len(by_id):
        # Only items with an unresolved dependency can be left: they contain a cycle.
        raise _cycle_error(by_id, deps, {i for i, count in waiting.items() if count > 0})
    return depth


def _cycle_error(
    by_id: Mapping[str, PlanItem], deps: Mapping[str, tuple[str, ...]], stuck: set[str]
) -> CycleError:
    cycle = _find_cycle(deps, stuck)
    path = " → ".join(cycle)
    files = ", ".join(str(by_id[i].source) for i in cycle[:-1] if by_id[i].source)
    where = f" (in {files})" if files else ""
    return CycleError(
        f"Dependency cycle: {path}{where}. These PRPs wait for each other, so none can start: "
        "remove one of these dependencies.",
        cycle=cycle,
    )


def _find_cycle(deps: Mapping[str, tuple[str, ...]], stuck: set[str]) -> tuple[str, ...]:
    # Every stuck item has a stuck dependency, so walking them must come back to a visited one.
    node = min(stuck, key=id_key)
    seen: dict[str, int] = {}
    path: list[str] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min((d for d in deps[node] if d in stuck), key=id_key)
    loop = path[seen[node] :]
    start = loop.index(min(loop, key=id_key))
    loop = loop[start:] + loop[:start]
    return (*loop, loop[0])


# -- stage placement --------------------------------------------------------------------------


def _place(
    order: Sequence[str], deps: Mapping[str, tuple[str, ...]], overlaps: _Overlaps
) -> tuple[dict[str, int], list[Move]]:
    stage: dict[str, int] = {}
    moves: list[Move] = []
    occupancy = _Occupancy()
    for prp_id in order:
        wanted = 1 + max((stage[d] for d in deps[prp_id]), default=0)
        blocking = overlaps.blocking(prp_id)
        placed = occupancy.first_free(blocking, wanted)
        if placed != wanted:
            because = occupancy.holders(blocking, range(wanted, placed))
            moves.append(Move(prp=prp_id, from_stage=wanted, to_stage=placed, because=because))
        occupancy.occupy(overlaps.own(prp_id), placed, prp_id)
        stage[prp_id] = placed
    return stage, moves


class _Occupancy:
    """Which stage holds which PRP, per declared file; finds the first stage free of them all."""

    def __init__(self) -> None:
        self._holder: dict[str, dict[int, str]] = defaultdict(dict)
        # Per file, union-find over stages: an occupied stage points towards the next free one,
        # so a file many PRPs share costs near-constant time per lookup, not one probe per stage.
        self._next: dict[str, dict[int, int]] = defaultdict(dict)

    def first_free(self, files: Sequence[str], stage: int) -> int:
        moved = True
        while moved:
            moved = False
            for path in files:
                free = _find_free(self._next[path], stage)
                if free != stage:
                    stage, moved = free, True
        return stage

    def occupy(self, files: Iterable[str], stage: int, prp_id: str) -> None:
        for path in files:
            self._holder[path][stage] = prp_id
            self._next[path][stage] = stage + 1

    def holders(self, files: Sequence[str], stages: range) -> tuple[str, ...]:
        found = {h for s in stages for f in files if (h := self._holder[f].get(s)) is not None}
        return tuple(sorted(found, key=id_key))


def _find_free(next_stage: dict[int, int], stage: int) -> int:
    root = stage
    while root in next_stage:
        root = next_stage[root]
    while stage != root:  # path compression
        next_stage[stage], stage = root, next_stage[stage]
    return root


def _layers(stage: Mapping[str, int], by_id: Mapping[str, PlanItem]) -> tuple[tuple[str, ...], ...]:
    layers: list[list[str]] = [[] for _ in range(max(stage.values(), default=0))]
    for prp_id, number in stage.items():
        layers[number - 1].append(prp_id)
    return tuple(tuple(sorted(layer, key=lambda i: _order_key(by_id[i]))) for layer in layers)


# -- file overlap -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """A declared file: an exact path, or a glob (a trailing "/" directory is `dir/**`)."""

    text: str
    is_glob: bool
    prefix: str  # literal text before the first wildcard
    suffix: str  # literal text after the last wildcard
    match: Callable[[str], object]


def normalize_path(path: str) -> str:
    """Repo-relative POSIX form: `./`, `//` and `/.` removed; a directory keeps its `/`."""
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

    def __init__(self, items: Iterable[PlanItem]) -> None:
        self._own: dict[str, tuple[str, ...]] = {}
        self._users: dict[str, list[str]] = defaultdict(list)
        for item in items:
            paths = sorted({p for p in map(normalize_path, item.files) if p})
            self._own[item.id] = tuple(paths)
            for path in paths:
                self._users[path].append(item.id)
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

    def own(self, prp_id: str) -> tuple[str, ...]:
        return self._own[prp_id]

    def blocking(self, prp_id: str) -> tuple[str, ...]:
        """The declared files whose holders a PRP must not share a stage with."""
        own = self._own[prp_id]
        if not any(path in self._near for path in own):
            return own
        return tuple(sorted({*own, *(n for path in own for n in self._near.get(path, ()))}))

    def conflicts(self) -> dict[str, tuple[str, ...]]:
        """Each declared file or glob that several PRPs touch (directly or by overlap)."""
        found: dict[str, tuple[str, ...]] = {}
        for path in sorted(self._users):
            near = self._near.get(path, ())
            touching = {*self._users[path], *(u for n in near for u in self._users[n])}
            if len(touching) > 1:
                found[path] = tuple(sorted(touching, key=id_key))
        return found


def _with_prefix(sorted_paths: Sequence[str], prefix: str) -> Iterable[str]:
    start = bisect_left(sorted_paths, prefix)
    for path in sorted_paths[start:]:
        if not path.startswith(prefix):
            return
        yield path
