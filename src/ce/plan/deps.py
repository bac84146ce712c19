"""The dependency analyzer contract: `{"items": [{"id", "dependencies", "files"}]}` → the plan.

Output: `{"sorted_order", "stages": {"1": [...]}, "file_conflicts": {file: [ids]}, "has_cycles"}`
plus `"cycle": [...]` (first id repeated at the end) when the dependencies loop. Ids come back
exactly as the items spell them (`"P0"` stays `"P0"`): the caller looks them up in its own table.
Within the plan they are compared normalized, so a dependency may write `43.2.1` or `PRP-43.2.1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ce.core.errors import CeError
from ce.plan.graph import CycleError, PlanItem, file_conflicts, plan_stages
from ce.prp.normalize import normalize_id

_EXAMPLE = '{"items": [{"id": "PRP-1.1", "dependencies": [], "files": ["src/a.py"]}]}'


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    dependencies: list[str] | None = None
    depends_on: list[str] | None = None  # the frontmatter's alias
    files: list[str] | None = None
    order: int | None = None  # optional tie-breaker, as a PRP's `order:`


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[_Item]


def analyze(data: object, *, source: str = "input") -> dict[str, Any]:
    """Plan the items; a cycle is reported in the result, any other problem raises CeError."""
    given = _validate(data, source).items
    items = [_plan_item(n, item, source) for n, item in enumerate(given)]
    # Duplicates (after normalizing) are rejected by the planner before any id is spelled back.
    spelled = {item.id: raw.id for item, raw in zip(items, given, strict=True)}
    try:
        plan = plan_stages(items)
    except CycleError as exc:
        return {
            "sorted_order": [],
            "stages": {},
            "file_conflicts": _spell_conflicts(file_conflicts(items), spelled),
            "has_cycles": True,
            "cycle": [spelled[prp_id] for prp_id in exc.cycle],
        }
    return {
        "sorted_order": [spelled[prp_id] for prp_id in plan.sorted_order],
        "stages": {
            str(n): [spelled[prp_id] for prp_id in ids] for n, ids in enumerate(plan.stages, 1)
        },
        "file_conflicts": _spell_conflicts(plan.file_conflicts, spelled),
        "has_cycles": False,
    }


def render(result: dict[str, Any]) -> str:
    """The analyzer's output as printed by `ce analyze-deps` and `python -m ce.deps`."""
    return json.dumps(result, indent=2)


def _spell_conflicts(
    conflicts: Mapping[str, tuple[str, ...]], spelled: Mapping[str, str]
) -> dict[str, list[str]]:
    return {path: [spelled[prp_id] for prp_id in ids] for path, ids in conflicts.items()}


def analyze_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
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
    return analyze(data, source=str(path))


def cycle_message(source: str, cycle: list[str]) -> str:
    return (
        f"{source}: dependency cycle {' → '.join(cycle)}. These items wait for each other, "
        "so none can start: remove one of these dependencies."
    )


def _validate(data: object, source: str) -> _Input:
    try:
        return _Input.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors()[:3])
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise CeError(
            f"{source} does not have the analyzer's input shape: {problems}{more}. "
            f"Expected {_EXAMPLE} (each item may also have an integer `order`)."
        ) from None


_PROBLEMS = {
    "extra_forbidden": "unknown field",
    "missing": "missing",
    "model_type": "should be a JSON object",
    "list_type": "should be a list",
    "string_type": "should be a string",
    "int_type": "should be an integer",
}


def _describe(error: Any) -> str:
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    where = where.lstrip(".") or "the top level"
    return f"{where}: {_PROBLEMS.get(error['type'], error['msg'])}"


def _plan_item(index: int, item: _Item, source: str) -> PlanItem:
    field, dependencies = _dependencies(index, item, source)
    return PlanItem(
        id=_prp_id(item.id, f"items[{index}].id", source),
        dependencies=tuple(
            _prp_id(dep, f"items[{index}].{field}[{n}]", source)
            for n, dep in enumerate(dependencies)
        ),
        files=tuple(item.files or ()),
        order=item.order,
        source=f"{source} items[{index}]",
    )


def _dependencies(index: int, item: _Item, source: str) -> tuple[str, list[str]]:
    if item.dependencies is not None and item.depends_on is not None:
        raise CeError(
            f"{source}: items[{index}] has both `dependencies` and `depends_on`; keep only one "
            "of them."
        )
    if item.depends_on is not None:
        return "depends_on", item.depends_on
    return "dependencies", item.dependencies or []


def _prp_id(raw: str, where: str, source: str) -> str:
    normalized = normalize_id(raw)
    if normalized is None:
        raise CeError(
            f"{source}: {where} is {raw!r}, which is not a PRP id: use letters, digits, '.', "
            "'_' and '-', e.g. PRP-43.2.1 or 43.2.1."
        )
    return normalized
