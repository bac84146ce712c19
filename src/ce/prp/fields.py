"""The frontmatter boundary: raw YAML mapping in, validated fields out, or one CeError.

Known keys (and their aliases) are validated by a pydantic model whose before-validators
normalize the vocabulary; every other key is kept, untouched, as `extra`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ce.core.errors import CeError
from ce.prp import normalize as norm
from ce.prp.model import Complexity

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
    model_config = ConfigDict(frozen=True, extra="forbid")

    prp_id: str | None = None
    title: str | None = None
    status: str | None = None
    dependencies: norm.Dependencies = norm.Dependencies()
    stage: int | None = None
    estimated_hours: float | None = None
    files_modified: tuple[str, ...] = ()
    files_created: tuple[str, ...] = ()
    batch_id: str | None = None
    order: int | None = None
    complexity: Complexity = Complexity.MEDIUM
    model: str | None = None
    validation: dict[str, str] = {}

    _prp_id = _before(norm.normalize_prp_id, "prp_id")
    _title = _before(norm.normalize_title, "title")
    _status = _before(lambda raw: None if raw is None else norm.normalize_status(raw), "status")
    _dependencies = _before(norm.normalize_dependencies, "dependencies")
    _stage = _before(norm.normalize_stage, "stage")
    _hours = _before(norm.normalize_hours, "estimated_hours")
    _files = _before(norm.normalize_files, "files_modified", "files_created")
    _batch_id = _before(norm.normalize_batch_id, "batch_id")
    _order = _before(norm.normalize_order, "order")
    _complexity = _before(norm.normalize_complexity, "complexity")
    _model = _before(norm.normalize_model, "model")
    _validation = _before(norm.normalize_validation, "validation")


def read_fields(path: Path, mapping: dict[Any, Any]) -> tuple[Fields, dict[str, Any]]:
    """The validated known fields and the unknown keys (kept as written)."""
    by_key = _index_keys(path, mapping)
    chosen: dict[str, Any] = {}
    source: dict[str, str] = {}  # canonical field -> the key the file used, for messages
    for field, keys in ALIASES.items():
        for key in keys:
            if key in by_key and by_key[key][1] is not None:
                source[field], chosen[field] = by_key[key]
                break
    used = {normal_key(key) for key in source.values()}
    known = {key for keys in ALIASES.values() for key in keys}
    extra = {
        written: value
        for key, (written, value) in by_key.items()
        if key not in used and not (key in known and value is None)
    }
    try:
        return Fields.model_validate(chosen), extra
    except ValidationError as exc:
        raise CeError(_render(path, exc, source)) from None


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


def normal_key(key: str) -> str:
    return re.sub(r"[\s-]+", "_", key.strip().lower())


def _render(path: Path, exc: ValidationError, source: dict[str, str]) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if isinstance(cause, ValueError) else error["msg"]
        problems.append(f"field `{source.get(field, field)}`: {message}")
    return f"{path}: " + "; ".join(problems) + "."
