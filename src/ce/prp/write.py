"""Write a PRP's status back, changing nothing else in the file, byte for byte.

A line-based edit of the frontmatter (quoting style, comments, key order, line endings and the
body stay as they are), verified by re-reading the YAML before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ce.core.errors import CeError
from ce.fsio import write_atomic
from ce.prp.fields import normal_key
from ce.prp.frontmatter import BOM, bare, closing_index, load_yaml, split_lines
from ce.prp.normalize import normalize_status
from ce.prp.parse import read_prp_text


def set_status(path: Path, status: str, completion_date: date | None) -> None:
    """Set `status` (and `completion_date`) in the file at `path`, atomically."""
    text = read_prp_text(path)
    updated = set_status_text(text, status, completion_date, where=str(path))
    if updated != text:
        write_atomic(path.resolve(), updated.encode("utf-8"))


def set_status_text(
    text: str, status: str, completion_date: date | None, *, where: str = "the PRP"
) -> str:
    """`text` with `status` (and `completion_date` as YYYY-MM-DD, unless None) set.

    A missing `status` is added at the end of the frontmatter, a missing `completion_date`
    right after the status line.
    """
    try:
        word = normalize_status(status)
    except ValueError as exc:
        raise CeError(f"{where}: cannot set the status: {exc}.") from None
    lines = split_lines(text)
    close = closing_index(lines)
    if close is None or close == len(lines):
        raise CeError(f"{where}: cannot set the status: the file has no YAML frontmatter.")
    lines = _set_field(lines, close, "status", word, after=None)
    if completion_date is not None:
        close = closing_index(lines) or close
        lines = _set_field(lines, close, "completion_date", completion_date.isoformat(), "status")
    updated = "".join(lines)
    _verify(text, updated, word, completion_date, where)
    return updated


@dataclass(frozen=True, kw_only=True)
class _Field:
    start: int  # the key's line
    end: int  # one past its last line (a value may continue on indented lines)
    value_start: int  # offset of the value in the key's line
    value_end: int


def _set_field(lines: list[str], close: int, key: str, value: str, after: str | None) -> list[str]:
    found = _find_field(lines, close, key)
    if found is None:
        anchor = _find_field(lines, close, after) if after else None
        at = anchor.end if anchor else close
        return [*lines[:at], f"{key}: {value}{_newline(lines)}", *lines[at:]]
    line = lines[found.start]
    head, old, tail = (
        line[: found.value_start],
        line[found.value_start : found.value_end],
        line[found.value_end :],
    )
    quote = old[0] if old[:1] in ("'", '"') else ""
    space = "" if head[-1:].isspace() else " "  # `status:` with the value on the next line
    new_line = f"{head}{space}{quote}{value}{quote}{tail}"
    return [*lines[: found.start], new_line, *lines[found.end :]]


def _find_field(lines: list[str], close: int, key: str) -> _Field | None:
    """The top-level `key:` line of the frontmatter (key matched like the parser does)."""
    name = re.escape(key).replace("_", "[_ -]")
    pattern = re.compile(rf"""(["']?){name}\1[ \t]*:(?=[ \t\r\n]|$)[ \t]*""", re.IGNORECASE)
    for index in range(1, close):
        match = pattern.match(lines[index])
        if match:
            return _field_at(lines, close, index, match.end())
    return None


def _field_at(lines: list[str], close: int, index: int, value_start: int) -> _Field:
    line = bare(lines[index])
    value_end = value_start + _value_length(line[value_start:])
    value = line[value_start:value_end]
    end = index + 1
    if value in ("", "|", ">", "|-", ">-", "|+", ">+"):
        # The value is on the following indented lines: the whole block is replaced.
        while end < close and bare(lines[end])[:1] in (" ", "\t"):
            end += 1
    return _Field(start=index, end=end, value_start=value_start, value_end=value_end)


def _value_length(rest: str) -> int:
    """Length of the scalar at the start of `rest`, without a trailing comment or spaces."""
    if rest[:1] == '"':
        match = re.match(r'"(?:[^"\\]|\\.)*"', rest)
    elif rest[:1] == "'":
        match = re.match(r"'(?:[^']|'')*'", rest)
    else:
        match = re.match(r"(?:[^ \t#]|[ \t]+(?=[^ \t#])|(?<=[^ \t])#)*", rest)
    return match.end() if match else len(rest.rstrip())


def _newline(lines: list[str]) -> str:
    return "\r\n" if lines[0].endswith("\r\n") else "\n"


def _verify(before: str, after: str, word: str, completion_date: date | None, where: str) -> None:
    """Re-read both frontmatters: only status and completion_date may differ."""
    old = _frontmatter(before, where)  # a malformed file is reported as such
    if not _only_status_changed(old, after, word, completion_date):
        raise CeError(
            f"{where}: cannot set `status: {word}` without disturbing the rest of the "
            "frontmatter (the status line is written in a form ce does not edit); "
            f"set it by hand."
        )


def _only_status_changed(
    old: dict[str, Any], after: str, word: str, completion_date: date | None
) -> bool:
    try:
        new = _frontmatter(after, "the edited frontmatter")
    except CeError:
        return False
    changed = {"status", "completion_date"}
    date_set = completion_date is None or new.get("completion_date") in (
        completion_date,
        completion_date.isoformat(),
    )
    kept = _without(old, changed) == _without(new, changed)
    return kept and new.get("status") == word and date_set


def _frontmatter(text: str, where: str) -> dict[str, Any]:
    lines = split_lines(text.removeprefix(BOM))
    close = closing_index(lines) or 0
    yaml_text = "".join(lines[1:close]).replace("\r\n", "\n")
    data = load_yaml(Path(where), yaml_text)
    return (
        {normal_key(str(key)): value for key, value in data.items()}
        if isinstance(data, dict)
        else {}
    )


def _without(mapping: dict[str, Any], keys: set[str]) -> str:
    # repr: a `.nan` value is not equal to itself, yet it is unchanged.
    return repr({key: value for key, value in mapping.items() if key not in keys})
