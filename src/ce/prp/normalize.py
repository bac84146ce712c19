"""The vocabulary of real PRP frontmatter, normalized (the table in DESIGN.md).

Each `normalize_*` function takes a raw YAML value and returns the normalized one, or raises
ValueError with a sentence that says what was wrong and what to write instead; the pydantic
model in `ce.prp.fields` turns those into one `CeError` naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from ce.core.ids import ID_PREFIX, ID_RULE, id_text, is_safe_token, normalize_id
from ce.core.vocab import MODEL_TIERS, model_choice
from ce.prp.model import Complexity, StatusClass

STATUS_WORDS: dict[str, StatusClass] = {
    **dict.fromkeys(
        ("planning", "pending", "new", "initial", "ready", "in_progress"), StatusClass.READY
    ),
    **dict.fromkeys(
        ("completed", "complete", "done", "executed", "validated", "merged"), StatusClass.DONE
    ),
    **dict.fromkeys(
        ("draft", "rejected", "archived", "superseded", "blocked", "cancelled", "canceled"),
        StatusClass.NOT_RUNNABLE,
    ),
}
# Values people write to mean "nothing here".
_NOTHING = frozenset({"", "none", "null", "nil", "n/a", "na", "-", "—", "[]", "tbd", "nothing"})


def normalize_prp_id(raw: object) -> str | None:
    """The `prp_id` field: None when absent, ValueError when not a safe id."""
    if raw is None:
        return None
    prp_id = normalize_id(raw)
    if prp_id is None:
        raise ValueError(f"{show_value(raw)} is not a safe PRP id: {ID_RULE}")
    return prp_id


def normalize_status(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{show_value(raw)} is not a status word; {_status_choices()}")
    word = _SEPARATORS.sub("_", raw.strip().lower())
    if word not in STATUS_WORDS:
        raise ValueError(f"{show_value(raw)} is not a status ce knows; {_status_choices()}")
    return word


_SEPARATORS = re.compile(r"[\s-]+")


def status_class(word: str) -> StatusClass:
    return STATUS_WORDS[word]


def _status_choices() -> str:
    groups = {cls: ", ".join(w for w, c in STATUS_WORDS.items() if c is cls) for cls in StatusClass}
    return (
        f"write one of: {groups[StatusClass.READY]} (to run it); "
        f"{groups[StatusClass.DONE]} (done); {groups[StatusClass.NOT_RUNNABLE]} (not to run)"
    )


def normalize_title(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected a line of text, got {kind_of(raw)}")
    return one_line(str(raw)) or None


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """A title as one line: control characters (a NUL that git refuses in a commit message,
    a terminal escape) and runs of whitespace become single spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


class Dependencies(NamedTuple):
    ids: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # prose items that are not ids


def normalize_dependencies(raw: object) -> Dependencies:
    ids: dict[str, None] = {}  # a dict keeps the written order and drops duplicates
    ignored: dict[str, None] = {}
    for text in _texts(raw, what="a PRP id"):
        dep = dependency_id(text)
        if dep is None:
            ignored[" ".join(text.split())] = None
        else:
            ids[dep] = None
    return Dependencies(tuple(ids), tuple(ignored))


def dependency_id(text: str) -> str | None:
    """The id an item starts with ("PRP-36.1.1 (note)" -> PRP-36.1.1), None when it is prose."""
    token = _ID_END.split(text.strip(), maxsplit=1)[0].strip("`*\"'[].")
    if token[: len(ID_PREFIX)].lower() == ID_PREFIX:
        dep = normalize_id(token)
        if dep is None:
            raise ValueError(
                f"{show_value(token)} looks like a PRP id but is not a valid one: {ID_RULE}"
            )
        return dep
    if _NUMBERED.fullmatch(token):
        return normalize_id(token)
    return None


_ID_END = re.compile(r"[\s(:,;]")
_NUMBERED = re.compile(r"\d{1,9}(?:\.\d{1,9})*")


def normalize_files(raw: object) -> tuple[str, ...]:
    files: dict[str, None] = {}
    for text in _texts(raw, what="a file path"):
        path = clean_path(text)
        if path is not None:
            files[path] = None
    return tuple(files)


def clean_path(text: str) -> str | None:
    """A repo-relative POSIX path or glob from "`./src/a.py` (new file)"; None for "None"."""
    quoted = _QUOTED.search(text) if "`" in text else None
    text = quoted.group(1) if quoted else _strip_notes(text)
    text = text.strip().strip("*\"'").strip()
    if text.lower() in _NOTHING:
        return None
    if _CONTROL_CHARACTER.search(text):
        raise ValueError(f"{show_value(text)} contains a control character")
    return _relative_posix(text.replace("\\", "/"))


_QUOTED = re.compile(r"`([^`]+)`")
_CONTROL_CHARACTER = re.compile("[\x00-\x1f]")
_PARENTHESES = re.compile(r"\([^()]*\)")
_NOTE = re.compile(r"\s[—–-]\s|\s#|:\s")


def _strip_notes(text: str) -> str:
    previous = None
    while previous != text and "(" in text:  # nested parentheses: strip from the inside out
        previous, text = text, _PARENTHESES.sub(" ", text)
    text = _NOTE.split(text, maxsplit=1)[0]
    words = text.split()
    return words[0] if words else ""


_DRIVE = re.compile(r"[A-Za-z]:(/|$)")


def _relative_posix(text: str) -> str:
    if text.startswith(("/", "~")) or _DRIVE.match(text):
        raise ValueError(
            f"{show_value(text)} is an absolute path; write it relative to the repository root, "
            "e.g. src/app/config.py"
        )
    parts: list[str] = []
    for part in text.split("/"):
        if part == "..":
            if not parts:
                raise ValueError(
                    f"{show_value(text)} points outside the repository; write a path inside it, "
                    "relative to the repository root"
                )
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    if not parts:
        raise ValueError(f"{show_value(text)} is not a file path; write e.g. src/app/config.py")
    return "/".join(parts)


def normalize_stage(raw: object) -> int | None:
    """2, "2", "stage-2-parallel" -> 2."""
    if raw is None:
        return None
    number = _whole_number(raw)
    if number is None and isinstance(raw, str):
        if raw.strip().lower() in _NOTHING:
            return None
        found = re.search(r"(?<!\d)\d{1,6}(?!\d)", raw)
        number = int(found.group()) if found else None
    if number is None or number < 0:
        raise ValueError(
            f"{show_value(raw)} is not a stage number; write e.g. 2 or stage-2-parallel"
        )
    return number


def normalize_order(raw: object) -> int | None:
    if raw is None:
        return None
    number = _whole_number(raw)
    if number is None and isinstance(raw, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", raw):
        number = int(raw)
    if number is None:
        raise ValueError(f"{show_value(raw)} is not a whole number; write e.g. 2")
    return number


def _whole_number(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and abs(raw) < 10**9:
        return raw
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e9:
        return int(raw)
    return None


_HOURS = re.compile(
    r"~?\s*(\d{1,6}(?:\.\d+)?)\s*(?:(?:-|–|—|to)\s*(\d{1,6}(?:\.\d+)?))?\s*"
    r"(h|hrs?|hours?|m|mins?|minutes?)?\.?",
    re.IGNORECASE,
)


def normalize_hours(raw: object) -> float | None:
    """1.5, "3-5", "24-36", "2h", "30 min" -> hours (a range -> its upper bound)."""
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if 0 <= raw <= 10**6:
            return float(raw)
    elif isinstance(raw, str):
        if raw.strip().lower() in _NOTHING:
            return None
        match = _HOURS.fullmatch(raw.strip())
        if match:
            hours = max(float(match.group(1)), float(match.group(2) or 0))
            minutes = (match.group(3) or "h").lower().startswith("m")
            return hours / 60 if minutes else hours
    raise ValueError(
        f'{show_value(raw)} is not a number of hours; write e.g. 2, 1.5, "3-5" or "2h"'
    )


def normalize_complexity(raw: object) -> Complexity:
    if raw is None:
        return Complexity.MEDIUM
    word = raw.strip().lower() if isinstance(raw, str) else None
    if word in _COMPLEXITIES:
        return _COMPLEXITIES[word]
    raise ValueError(f"{show_value(raw)} is not a complexity; write low, medium or high")


_COMPLEXITIES = {complexity.value: complexity for complexity in Complexity}


def normalize_model(raw: object) -> str | None:
    """A tier, or a model name the executor is given as is (as `--model` takes them)."""
    if raw is None:
        return None
    try:
        return model_choice(raw) if isinstance(raw, str) else model_choice("")
    except ValueError:
        raise ValueError(
            f"{show_value(raw)} is not a model; write {', '.join(MODEL_TIERS)} or a model name "
            "such as claude-sonnet-4-5"
        ) from None


def normalize_batch_id(raw: object) -> str | None:
    if raw is None:
        return None
    text = id_text(raw)
    if text is None or not is_safe_token(text.strip()):
        raise ValueError(
            f"{show_value(raw)} is not a batch id; write a number such as 43 (letters, "
            "digits, '.', '_' and '-' only)"
        )
    return text.strip()


def normalize_validation(raw: object) -> dict[str, str]:
    """{level1..level4: "command"}; "L3" and 3 are accepted as keys."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f'expected a mapping such as {{level3: "pytest -q"}}, got {kind_of(raw)}')
    commands: dict[str, str] = {}
    for key, command in raw.items():
        level = re.fullmatch(r"(?:level|l)?[\s_-]*([1-4])", str(key).strip().lower())
        if level is None:
            raise ValueError(f"{show_value(key)} is not a validation level; write level1 .. level4")
        if command is None:
            continue
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f"{key}: expected a command line as text, got {kind_of(command)}")
        commands[f"level{level.group(1)}"] = command.strip()
    return commands


def _texts(raw: object, *, what: str) -> Iterator[str]:
    """The text items of a value written as a list, a flow list or "a, b (note)"."""
    if raw is None:
        return
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            yield from _split_items(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield str(item)
        elif isinstance(item, dict):
            yield _dict_item(item, what=what)
        else:
            raise ValueError(f"expected {what} or a list of them, got {kind_of(item)}")


def _dict_item(item: dict[object, object], *, what: str) -> str:
    # "- PRP-36.1.1: ProjectInitializer class" is a one-key mapping in YAML.
    for key in ("id", "prp_id", "prp", "path", "file"):
        value = item.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
    if len(item) == 1:
        only = next(iter(item))
        if isinstance(only, str | int | float) and not isinstance(only, bool):
            return str(only)
    raise ValueError(f"expected {what}, got the mapping {show_value(item)}")


def _split_items(text: str) -> list[str]:
    """Split on commas, semicolons and newlines outside parentheses, brackets and backticks."""
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        stripped = stripped[1:-1]
    items = _split_nested(stripped) if _SPLITS_OR_NESTS.search(stripped) else [stripped]
    return [item.strip() for item in items if item.strip().lower() not in _NOTHING]


_SPLITS_OR_NESTS = re.compile(r"[`()\[\]{},;\n]")


def _split_nested(stripped: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in stripped:
        if char == "`":
            quoted = not quoted
        elif char in "([{" and not quoted:
            depth += 1
        elif char in ")]}" and not quoted:
            depth = max(depth - 1, 0)
        elif char in ",;\n" and depth == 0 and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


def kind_of(value: object) -> str:
    names = {
        list: "a list",
        dict: "a mapping",
        bool: "true/false",
        set: "a set",
        type(None): "nothing",
    }
    return names.get(type(value), f"{type(value).__name__} {show_value(value)}")


def show_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
