"""The dependency analyzer contract: `{"items": [{"id", "dependencies", "files"}]}` → the plan.

Output: `{"sorted_order", "stages": {"1": [...]}, "file_conflicts": {file: [ids]}, "has_cycles"}`
plus `"cycle": [...]` (first id repeated at the end) when the dependencies loop. Ids come back
exactly as the items spell them (`"P0"` stays `"P0"`): the caller looks them up in its own table.
Within the plan they are compared normalized, so a dependency may write `43.2.1` or `PRP-43.2.1`.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, NoReturn

from ce.core.errors import CeError
from ce.core.ids import normalize_id
from ce.core.jsontext import dumps_indented
from ce.plan.graph import CycleError, PlanItem, file_conflicts, plan_stages

_EXAMPLE = '{"items": [{"id": "PRP-1.1", "dependencies": [], "files": ["src/a.py"]}]}'


_FIELDS = ("id", "dependencies", "depends_on", "files", "order")
_LISTS = ("dependencies", "depends_on", "files")
_PLAIN_FIELDS = frozenset(_FIELDS) - {"depends_on"}


def analyze(data: object, *, source: str = "input") -> dict[str, Any]:
    """Plan the items; a cycle is reported in the result, any other problem raises CeError."""
    items, spelled = _plain_items(data, source) or _checked_items(data, source)
    try:
        plan = plan_stages(items)
    except CycleError as exc:
        return {
            "sorted_order": [],
            "stages": {},
            "file_conflicts": _spell_conflicts(file_conflicts(items), spelled),
            "has_cycles": True,
            "cycle": _spell(exc.cycle, spelled),
        }
    return {
        "sorted_order": _spell(plan.sorted_order, spelled),
        "stages": {str(n): _spell(ids, spelled) for n, ids in enumerate(plan.stages, 1)},
        "file_conflicts": _spell_conflicts(plan.file_conflicts, spelled),
        "has_cycles": False,
    }


# The items to plan, and each normalized id -> the id as the input spells it (None: the same).
_Items = tuple[list[PlanItem], Mapping[str, str] | None]


def _checked_items(data: object, source: str) -> _Items:
    """The items after the full look, which raises on the first problem in the input's order:
    its shape (every problem of it at once), then each item's ids."""
    given = _validate(data, source)
    items = [_plan_item(n, item, source) for n, item in enumerate(given)]
    # Duplicates (after normalizing) are rejected by the planner before any id is spelled back.
    return items, {item.id: raw["id"] for item, raw in zip(items, given, strict=True)}


def _plain_items(data: object, source: str) -> _Items | None:
    """The items when `data` is the input in the exact types `json.loads` makes, without
    `depends_on`, and every id reads: the common case, read column by column (each field of
    every item taken and checked in one pass, mostly in C). None says nothing but that the
    full look (`_checked_items`) must decide, and word any problem."""
    if type(data) is not dict or len(data) != 1 or type(given := data.get("items")) is not list:
        return None
    if {*map(type, given)} - {dict} or not all(map(_PLAIN_FIELDS.issuperset, given)):
        return None
    raw_ids = [item.get("id") for item in given]
    dependencies = [item.get("dependencies") for item in given]
    files = [item.get("files") for item in given]
    orders = [item.get("order") for item in given]
    if (
        {*map(type, raw_ids)} - {str}
        or not _string_lists(dependencies)
        or not _string_lists(files)
        or {*map(type, orders)} - {int, type(None)}  # bool is not int here
        or None in (ids := list(map(_normalized, raw_ids)))
    ):
        return None
    dependency_ids = [tuple(map(_normalized, names)) if names else () for names in dependencies]
    if None in chain.from_iterable(dependency_ids):
        return None
    items = list(
        map(
            PlanItem,  # type: ignore[arg-type]  # no None left in the ids
            ids,
            dependency_ids,
            [tuple(paths) if paths else () for paths in files],
            orders,
            [f"{source} items[{index}]" for index in range(len(given))],
        )
    )
    if ids == raw_ids:
        return items, None
    return items, dict(zip(ids, raw_ids, strict=True))  # type: ignore[arg-type]  # as above


def _string_lists(values: list[object]) -> bool:
    """Each value None or a list of strings: joining them all is the quickest look (in C)."""
    if {*map(type, values)} - {list, type(None)}:
        return False
    try:
        "".join(chain.from_iterable(filter(None, values)))  # type: ignore[arg-type]
    except TypeError:  # not a string
        return False
    return True


def _spell(ids: Iterable[str], spelled: Mapping[str, str] | None) -> list[str]:
    return list(ids) if spelled is None else [spelled[prp_id] for prp_id in ids]


def render(result: dict[str, Any]) -> str:
    """The analyzer's output as printed by `ce analyze-deps` and `python -m ce.deps`."""
    return dumps_indented(result)  # json.dumps(result, indent=2), in a tenth of its time


def _spell_conflicts(
    conflicts: Mapping[str, tuple[str, ...]], spelled: Mapping[str, str] | None
) -> dict[str, list[str]]:
    return {path: _spell(ids, spelled) for path, ids in conflicts.items()}


def analyze_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and plan the file; messages name it as `str(path)` spells it. (Not `pathlib`,
    whose import is a tenth of `ce analyze-deps`'s start-up.)"""
    try:
        with open(path, encoding="utf-8") as file:  # noqa: PTH123  # not pathlib: see above
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise CeError(
            f"Cannot read {path}: {reason}. Give the path of a JSON file shaped like {_EXAMPLE}."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CeError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            f"Expected an object shaped like {_EXAMPLE}."
        ) from None
    return analyze(data, source=os.fspath(path))


def cycle_message(source: str, cycle: list[str]) -> str:
    return (
        f"{source}: dependency cycle {' → '.join(cycle)}. These items wait for each other, "
        "so none can start: remove one of these dependencies."
    )


def _validate(data: object, source: str) -> list[dict[str, Any]]:
    # By hand, not with pydantic: `ce analyze-deps` starts in a tenth of the time without it.
    problems = list(_shape_problems(data))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CeError(
            f"{source} does not have the analyzer's input shape: {'; '.join(problems[:3])}"
            f"{more}. Expected {_EXAMPLE} (each item may also have an integer `order`)."
        )
    assert isinstance(data, dict)
    return [{name: item.get(name) for name in _FIELDS} for item in data["items"]]


def _shape_problems(data: object) -> Iterator[str]:
    """What keeps `data` from being the input: the declared fields first, then unknown ones."""
    if not isinstance(data, dict):
        yield "the top level: should be a JSON object"
        return
    items = data.get("items")
    if "items" not in data:
        yield "items: missing"
    elif not isinstance(items, list):
        yield "items: should be a list"
    else:
        for n, item in enumerate(items):
            yield from _item_problems(f"items[{n}]", item)
    yield from (f"{key}: unknown field" for key in data if key != "items")


def _item_problems(where: str, item: object) -> Iterator[str]:
    if not isinstance(item, dict):
        yield f"{where}: should be a JSON object"
        return
    if "id" not in item:
        yield f"{where}.id: missing"
    elif not isinstance(item["id"], str):
        yield f"{where}.id: should be a string"
    for name in _LISTS:
        value = item.get(name)
        if value is not None and not isinstance(value, list):
            yield f"{where}.{name}: should be a list"
        elif value is not None:
            yield from (
                f"{where}.{name}[{n}]: should be a string"
                for n, entry in enumerate(value)
                if not isinstance(entry, str)
            )
    order = item.get("order")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        yield f"{where}.order: should be an integer"
    yield from (f"{where}.{key}: unknown field" for key in item if key not in _FIELDS)


def _plan_item(index: int, item: Mapping[str, Any], source: str) -> PlanItem:
    field, dependencies = _dependencies(index, item, source)
    prp_id = _normalized(item["id"]) or _not_an_id(item["id"], f"items[{index}].id", source)
    return PlanItem(
        id=prp_id,
        dependencies=_dependency_ids(dependencies, f"items[{index}].{field}", source),
        files=tuple(item.get("files") or ()),
        order=item.get("order"),
        source=f"{source} items[{index}]",
    )


def _dependencies(index: int, item: Mapping[str, Any], source: str) -> tuple[str, list[str]]:
    dependencies, depends_on = item.get("dependencies"), item.get("depends_on")
    if dependencies is not None and depends_on is not None:
        raise CeError(
            f"{source}: items[{index}] has both `dependencies` and `depends_on`; keep only one "
            "of them."
        )
    if depends_on is not None:
        return "depends_on", depends_on
    return "dependencies", dependencies or []


# Each id is written once as an item and again in every dependency on it.
_normalized = functools.lru_cache(maxsize=1 << 16)(normalize_id)


def _dependency_ids(raw: list[str], where: str, source: str) -> tuple[str, ...]:
    ids = tuple(map(_normalized, raw))
    if None in ids:
        n = ids.index(None)
        _not_an_id(raw[n], f"{where}[{n}]", source)
    return ids  # type: ignore[return-value]  # no None left


def _not_an_id(raw: str, where: str, source: str) -> NoReturn:
    raise CeError(
        f"{source}: {where} is {raw!r}, which is not a PRP id: use letters, digits, '.', "
        "'_' and '-', e.g. PRP-43.2.1 or 43.2.1."
    )
