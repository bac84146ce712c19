"""One PRP file -> the frozen `Prp` record, or a `CeError` that names the file and the field."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

from ce.core.errors import CeError
from ce.core.ids import normalize_id
from ce.prp import phases as md
from ce.prp.fields import Fields, read_fields
from ce.prp.frontmatter import load_yaml, split_document
from ce.prp.model import Findings, Prp
from ce.prp.normalize import kind_of, status_class

__all__ = ["normalize_id", "parse_prp", "read_prp_text"]

# The id at the start of a file name such as PRP-43.2.1-config-loader.md.
_FILENAME_ID = re.compile(r"PRP-\d{1,9}(?:\.\d{1,9})*(?=[-_.]|$)", re.IGNORECASE)


def parse_prp(path: Path, text: str | None = None) -> Prp:
    """Parse and normalize one PRP (reads `path` when `text` is None)."""
    if text is None:
        text = read_prp_text(path)
    document = split_document(path, text)
    mapping = load_yaml(path, document.yaml_text)
    if mapping is None:
        raise CeError(
            f"{path}: the frontmatter is empty: add the PRP's fields (`prp_id: PRP-43.2.1`, "
            "`title: ...`, `status: planning`)."
        )
    if not isinstance(mapping, dict):
        raise CeError(
            f"{path}: the frontmatter must be a mapping of fields (`prp_id: PRP-43.2.1`, "
            f"`title: ...`, `status: planning`), not {kind_of(mapping)}."
        )
    fields, hints, extra = read_fields(path, mapping)
    items = md.scan_markdown(document.body)
    title = fields.title or md.first_title(items)
    if title is None:
        raise CeError(
            f"{path}: the PRP has no title: add `title: ...` to the frontmatter "
            "(or a `# Title` heading)."
        )
    prp_id, id_warnings = _prp_id(path, fields)
    status = _status(path, fields)
    phases, phase_warnings = md.extract_phases(
        items, title=title, where=str(path), first_line=document.body_line
    )
    return Prp(
        id=prp_id,
        path=path,
        title=title,
        status=status,
        status_class=status_class(status),
        dependencies=_dependencies(path, prp_id, fields),
        files=tuple(dict.fromkeys(fields.files_modified + fields.files_created)),
        hints=hints,
        validation=MappingProxyType(dict(fields.validation)),
        phases=phases,
        findings=Findings(
            warnings=(*id_warnings, *_dependency_warnings(path, fields), *phase_warnings),
            extra=MappingProxyType(extra),
            ignored_dependencies=fields.dependencies.ignored,
        ),
        body=document.body,
    )


def read_prp_text(path: Path) -> str:
    """The file's text, line endings untouched; a CeError when it is unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CeError(f"{path}: cannot read the PRP file: {exc.strerror or exc}.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CeError(
            f"{path}: line {line} is not valid UTF-8 (byte {exc.start}); save the file as UTF-8."
        ) from None


def _prp_id(path: Path, fields: Fields) -> tuple[str, tuple[str, ...]]:
    found = _FILENAME_ID.match(path.name)
    if fields.prp_id is not None:
        return fields.prp_id, _name_mismatch(path, fields.prp_id, found)
    prp_id = normalize_id(found.group()) if found else None
    if prp_id is None:
        raise CeError(
            f"{path}: the frontmatter has no `prp_id`; add one, e.g. `prp_id: PRP-43.2.1`."
        )
    return prp_id, (f"{path}: no `prp_id` in the frontmatter; using {prp_id} from the file name.",)


def _name_mismatch(path: Path, prp_id: str, found: re.Match[str] | None) -> tuple[str, ...]:
    name, stem = path.name.lower(), prp_id.lower()
    # Not a regular expression: one per id would be compiled, ten thousand in a large batch.
    if found is None or (name.startswith(stem) and name[len(stem) : len(stem) + 1] in "-_."):
        return ()
    return (f"{path}: the file name says {found.group()} but its `prp_id` is {prp_id}.",)


def _status(path: Path, fields: Fields) -> str:
    if fields.status is None:
        raise CeError(
            f"{path}: the frontmatter has no `status`; add `status: planning` to run this PRP."
        )
    return fields.status


def _dependencies(path: Path, prp_id: str, fields: Fields) -> tuple[str, ...]:
    if prp_id in fields.dependencies.ids:
        raise CeError(
            f"{path}: field `dependencies`: {prp_id} depends on itself; remove it from its "
            "own dependencies."
        )
    return fields.dependencies.ids


def _dependency_warnings(path: Path, fields: Fields) -> tuple[str, ...]:
    return tuple(
        f"{path}: dependency {item!r} is not a PRP id, so it is ignored (write ids such as "
        "PRP-43.1.1; put notes in parentheses after the id)."
        for item in fields.dependencies.ignored
    )
