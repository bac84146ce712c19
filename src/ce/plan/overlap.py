"""Which declared files overlap: the planner's conflict check over `ce.core.paths`.

A literal counts as a directory once another declared path lies under it. Two globs are
compared conservatively (`_globs_may_overlap`). Each glob is compared only with the paths under
its literal prefix and with the globs whose prefix nests with its own, so the work stays near
linear in the number of declared paths.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, chain
from typing import NamedTuple

from ce.core.paths import as_glob, glob_regex, is_literal, literal_prefix, normalize_path


class _Glob(NamedTuple):
    """A declared glob (a trailing "/" directory is `dir/**`)."""

    text: str
    prefix: str  # literal text before the first wildcard
    suffix: str  # literal text after the last wildcard
    match: Callable[[str], object]


def _glob(text: str) -> _Glob:
    glob = as_glob(text)
    last = max(glob.rfind(c) for c in "*?[]")
    return _Glob(text, literal_prefix(glob), glob[last + 1 :], glob_regex(glob).fullmatch)


def _globs_may_overlap(a: _Glob, b: _Glob) -> bool:
    """Conservative: a path both could match must start with both literal prefixes and end
    with both literal suffixes, so overlap is assumed unless the prefixes or the suffixes
    differ. (One glob matching the other's text implies nested prefixes, so it is covered.)
    Over-reporting only serializes two PRPs that could have run side by side; missing an
    overlap would let them conflict at merge time."""
    prefixes_nest = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes_nest = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes_nest and suffixes_nest


class Overlaps:
    """Which declared files overlap. Files are numbered in sorted order and exact paths meet
    only through their numbers; globs alone are compared with others (`_glob_neighbours`)."""

    def __init__(self, files: Iterable[Sequence[str]]) -> None:
        declared = list(files)
        # Each distinct declaration normalized once (PRPs share files), then numbered; a path
        # that normalizes to nothing gets no number.
        normal = {path: normalize_path(path) for path in {p for ps in declared for p in ps}}
        if "" in normal.values():
            declared = [[path for path in paths if normal[path]] for paths in declared]
        self._paths = sorted({path for path in normal.values() if path})
        number = {path: k for k, path in enumerate(self._paths)}
        number_of = {given: number[path] for given, path in normal.items() if path}
        # Per item, its files' numbers, each once, as declared (their order never matters).
        self._own = [tuple(dict.fromkeys(map(number_of.__getitem__, ps))) for ps in declared]
        keys = [k for own in self._own for k in own]
        users = [n for n, own in enumerate(self._own) for _ in own]
        self._users = Groups.of(len(self._paths), keys, users)  # each group in id order
        near = _glob_neighbours(self._paths)
        self._near = {number[a]: [number[b] for b in others] for a, others in near.items()}

    def own(self, n: int) -> tuple[int, ...]:
        return self._own[n]

    def blocking(self, n: int) -> tuple[int, ...]:
        """The declared files whose holders a PRP must not share a stage with."""
        own, near = self._own[n], self._near
        if not near or near.keys().isdisjoint(own):  # no glob or directory: most plans
            return own
        return tuple(sorted({*own, *(m for k in own for m in near.get(k, ()))}))

    def conflicts(self, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each declared file or glob that several PRPs touch (directly or by overlap)."""
        found: dict[str, tuple[str, ...]] = {}
        users, near = self._users, self._near
        for k, path in enumerate(self._paths):
            if k in near:
                touching = sorted({*users.group(k), *(u for m in near[k] for u in users.group(m))})
            elif users.size(k) > 1:
                touching = users.group(k)
            else:
                continue
            if len(touching) > 1:
                found[path] = tuple(ids[n] for n in touching)
        return found


class Groups(NamedTuple):
    """Numbers grouped by a key number, each group in the order given. Stored flat, in two
    lists rather than a list per key: tens of thousands of small lists would each be tracked
    by the garbage collector and trigger full collections on large plans."""

    start: list[int]  # the group of key k is flat[start[k] : start[k + 1]]
    flat: list[int]

    @classmethod
    def of(cls, keys: int, key: Sequence[int], value: Sequence[int]) -> Groups:
        """Keys 0..keys-1; `key[i]` is the key of `value[i]` (counting sort: linear)."""
        counts = [0] * keys
        for k in key:
            counts[k] += 1
        start = [0, *accumulate(counts)]
        flat = [0] * len(value)
        fill = start[:-1]
        for k, v in zip(key, value, strict=True):
            flat[fill[k]] = v
            fill[k] += 1
        return cls(start, flat)

    def group(self, k: int) -> list[int]:
        return self.flat[self.start[k] : self.start[k + 1]]

    def size(self, k: int) -> int:
        return self.start[k + 1] - self.start[k]


def _glob_neighbours(sorted_paths: Sequence[str]) -> dict[str, list[str]]:
    """Each glob → the paths it matches and the globs it may overlap, and back; each literal
    that other declared paths lie under (a directory) → those paths, and back. Only pairs
    whose literal prefixes nest are compared: sorted by prefix, the globs whose prefix extends
    a glob's own directly follow it, so the work follows the pairs found, not globs²."""
    exact: list[str] = []  # sorted
    globs: list[_Glob] = []
    for text in sorted_paths:
        if is_literal(text):
            exact.append(text)
        else:
            globs.append(_glob(text))
    globs.sort(key=_prefix)
    prefixes = [glob.prefix for glob in globs]
    near: dict[str, list[str]] = defaultdict(list)
    for n, glob in enumerate(globs):
        for path in (exact[i] for i in _prefixed(exact, glob.prefix)):
            if glob.match(path):
                _link(near, glob.text, path)
        for other in (globs[i] for i in _prefixed(prefixes, glob.prefix, n + 1)):
            if _globs_may_overlap(glob, other):
                _link(near, glob.text, other.text)
    for directory in _literal_directories(exact, prefixes):
        beneath = f"{directory}/"
        for i in _prefixed(exact, beneath):
            _link(near, directory, exact[i])
        for i in _prefixed(prefixes, beneath):
            _link(near, directory, globs[i].text)
    return near


def _link(near: dict[str, list[str]], a: str, b: str) -> None:
    near[a].append(b)
    near[b].append(a)


def _literal_directories(exact: Sequence[str], prefixes: Sequence[str]) -> list[str]:
    """The literals that another declared path or glob lies under: directories, then. (A
    literal nothing is declared under is compared as a file; declare `dir/` to be sure.)
    One set of parent directories, not a search per literal: most plans have none."""
    directories = {text.rpartition("/")[0] for text in chain(exact, prefixes)}
    todo = directories
    while todo:  # and their parents: a literal `src` above `src/ce/git.py`
        todo = {d.rpartition("/")[0] for d in todo} - directories
        directories |= todo
    return sorted(directories.intersection(exact))


def _prefix(glob: _Glob) -> str:
    return glob.prefix


def _prefixed(sorted_texts: Sequence[str], prefix: str, start: int = 0) -> range:
    """The positions, from `start` on, of the texts beginning with `prefix`: in sorted order
    they are contiguous, starting where `prefix` itself would go."""
    first = end = bisect_left(sorted_texts, prefix, lo=start)
    while end < len(sorted_texts) and sorted_texts[end].startswith(prefix):
        end += 1
    return range(first, end)
