"""The frontmatter boundary: raw YAML mapping in, validated fields out, or one CeError.

Known keys (and their aliases) are validated by a pydantic model whose before-validators
normalize the vocabulary; every other key is kept, untouched, as `extra`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ce.core.errors import CeError
from ce.core.suggest import closest
from ce.prp import normalize as norm
from ce.prp.model import Complexity, PlanHints

# Canonical field -> the keys people write for it, the first present (and not null) wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "prp_id": ("prp_id", "id"),
    "title": ("title", "feature_name", "name"),
    "status": ("status",),
    "dependencies": ("dependencies", "depends_on"),
    "stage": ("stage",),
    "estimated_hours": ("estimated_hours", "effort_hours"),
    "files_modified": ("files_modified", "files_to_modify"),
    "files_created": ("files_created", "files_to_create"),
    "batch_id": ("batch_id", "batch"),
    "order": ("order", "execution_order", "merge_order"),
    "complexity": ("complexity",),
    "model": ("model",),
    "validation": ("validation",),
}


def _before(normalizer: Callable[[Any], Any], *names: str) -> Any:
    return field_validator(*names, mode="before")(staticmethod(normalizer))


class Fields(BaseModel):
    """What a PRP is and what it touches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prp_id: str | None = None
    title: str | None = None
    status: str | None = None
    dependencies: norm.Dependencies = norm.Dependencies()
    files_modified: tuple[str, ...] = ()
    files_created: tuple[str, ...] = ()
    validation: dict[str, str] = {}

    _prp_id = _before(norm.normalize_prp_id, "prp_id")
    _title = _before(norm.normalize_title, "title")
    _status = _before(lambda raw: None if raw is None else norm.normalize_status(raw), "status")
    _dependencies = _before(norm.normalize_dependencies, "dependencies")
    _files = _before(norm.normalize_files, "files_modified", "files_created")
    _validation = _before(norm.normalize_validation, "validation")


class HintFields(BaseModel):
    """What a PRP tells the planner: sizing, ordering, its model (`PlanHints` once read)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: int | None = None
    estimated_hours: float | None = None
    batch_id: str | None = None
    order: int | None = None
    complexity: Complexity = Complexity.MEDIUM
    model: str | None = None

    _stage = _before(norm.normalize_stage, "stage")
    _hours = _before(norm.normalize_hours, "estimated_hours")
    _batch_id = _before(norm.normalize_batch_id, "batch_id")
    _order = _before(norm.normalize_order, "order")
    _complexity = _before(norm.normalize_complexity, "complexity")
    _model = _before(norm.normalize_model, "model")

    def plan_hints(self) -> PlanHints:
        return PlanHints(**{name: getattr(self, name) for name in _HINTED})


def read_fields(path: Path, mapping: dict[Any, Any]) -> tuple[Fields, PlanHints, dict[str, Any]]:
    """The validated known fields, the planner's hints and the unknown keys (kept as written)."""
    by_key = _index_keys(path, mapping)
    chosen: tuple[dict[str, Any], dict[str, Any]] = ({}, {})  # Fields', HintFields'
    source: dict[str, str] = {}  # canonical field -> the key the file used, for messages
    used = set()
    for field, keys in ALIASES.items():
        for key in keys:
            if key in by_key and by_key[key][1] is not None:
                source[field], chosen[field in _HINTED][field] = by_key[key]
                used.add(key)
                break
    extra = {
        written: value
        for key, (written, value) in by_key.items()
        if key not in used and not (key in _KNOWN and value is None)
    }
    check_misspelled(path, [written for written in extra if normal_key(written) not in _KNOWN])
    problems: list[tuple[str, str]] = []
    fields = _validated(Fields, chosen[False], problems)
    hints = _plan_hints(chosen[True], problems)
    if fields is None or hints is None:
        raise CeError(_render(path, problems, source))
    return fields, hints, extra


_KNOWN = frozenset(key for keys in ALIASES.values() for key in keys)
_HINTED = tuple(HintFields.model_fields)
_Model = TypeVar("_Model", bound=BaseModel)


def _validated(
    model: type[_Model], data: dict[str, Any], problems: list[tuple[str, str]]
) -> _Model | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems += _problems(exc)
        return None


# The hints of a batch's PRPs are mostly a few of the same values (`complexity: low`,
# `estimated_hours: 3-5`): each distinct set validated once. Keyed by each value's repr, which
# keeps apart what == does not (`1`, `1.0`, `true`; `0.0`, `-0.0`); a problem is never kept,
# so it is found and worded anew.
_HINTS_READ: dict[tuple[tuple[str, str], ...], PlanHints] = {}


def _plan_hints(data: dict[str, Any], problems: list[tuple[str, str]]) -> PlanHints | None:
    key = tuple((name, repr(value)) for name, value in data.items())
    known = _HINTS_READ.get(key)
    if known is not None:
        return known
    hints = _validated(HintFields, data, problems)
    if hints is None:
        return None
    made = hints.plan_hints()
    if len(_HINTS_READ) < 4096:
        _HINTS_READ[key] = made
    return made


def check_misspelled(path: Path, unknown: list[str]) -> None:
    """An unknown key close to a known one is a typo that silently changes the plan (a PRP
    whose `dependancies` are ignored runs beside the PRPs it needs): an error, not extra."""
    typos = [(key, near) for key in unknown if (near := close_known_key(key)) is not None]
    if typos:
        listed = "; ".join(f"unknown key `{key}`: did you mean `{near}`?" for key, near in typos)
        raise CeError(
            f"{path}: {listed} Rename it in the frontmatter: ce would ignore the key, and the "
            "plan would change without it."
        )


# Stricter than a word's typo: a false match stops a run, and real PRPs carry keys of their own
# one letter from a known one (`state`, 0.8 from `stage`; `files_to_change`).
KEY_CUTOFF = 0.81


def close_known_key(key: str) -> str | None:
    """The known key `key` is most likely a misspelling of (the field's first name), or None:
    very similar, or two neighbouring letters swapped (`titel`). Other unknown keys are real
    PRPs' own (`created`, `priority`, `state`) and stay allowed."""
    written = normal_key(key)
    canonical = {known: keys[0] for keys in ALIASES.values() for known in keys}
    swapped = [known for known in sorted(canonical) if _swapped(written, known)]
    near = swapped[0] if swapped else closest(written, canonical, cutoff=KEY_CUTOFF)
    return None if near is None else canonical[near]


def _swapped(a: str, b: str) -> bool:
    differ = [i for i in range(len(a)) if len(a) == len(b) and a[i] != b[i]]
    return len(differ) == 2 and differ[1] == differ[0] + 1 and a[differ[0]] == b[differ[1]]


def _index_keys(path: Path, mapping: dict[Any, Any]) -> dict[str, tuple[str, Any]]:
    """Keys matched case-insensitively, with "-" or spaces as "_": `Status`, `prp-id`."""
    by_key: dict[str, tuple[str, Any]] = {}
    for raw_key, value in mapping.items():
        written = raw_key if isinstance(raw_key, str) else str(raw_key)
        key = normal_key(written)
        if key in by_key:
            raise CeError(
                f"{path}: the frontmatter has both `{by_key[key][0]}` and `{written}`; "
                "keep only one of them."
            )
        by_key[key] = (written, value)
    return by_key


@functools.lru_cache(maxsize=1024)  # the same few keys in every PRP of a batch
def normal_key(key: str) -> str:
    return _SEPARATORS.sub("_", key.strip().lower())


_SEPARATORS = re.compile(r"[\s-]+")


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per error; _render names the field by the key the file used."""
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if isinstance(cause, ValueError) else error["msg"]
        problems.append((field, message))
    return problems


def _render(path: Path, problems: list[tuple[str, str]], source: dict[str, str]) -> str:
    named = (f"field `{source.get(field, field)}`: {message}" for field, message in problems)
    return f"{path}: " + "; ".join(named) + "."
