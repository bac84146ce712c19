"""Find the YAML frontmatter of a PRP and load it safely.

Shared by the parser and the status writer, so both agree on where the frontmatter is.
Lines end at "\\n" only (a "\\r" before it belongs to the line ending), which keeps CRLF files
editable byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import ComposerError
from ruamel.yaml.constructor import ConstructorError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError

from ce.core.errors import CeError
from ce.prp.safe_yaml import safe_load

BOM = "\ufeff"
_DELIMITERS = ("---", "...")


@dataclass(frozen=True, kw_only=True)
class Document:
    yaml_text: str  # the frontmatter, "\n" line endings
    body: str  # everything after the closing delimiter, "\n" line endings
    body_line: int  # 1-based line of the file where the body starts


def split_lines(text: str) -> list[str]:
    """The lines of `text`, each keeping its line ending."""
    # Not str.splitlines: it also splits on a lone "\r", \x0c, \u2028..., the writer must not.
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def bare(line: str) -> str:
    """A line without its line ending."""
    return line.rstrip("\r\n")


def closing_index(lines: list[str]) -> int | None:
    """Index of the line closing the frontmatter, or None when the file does not open one."""
    if not lines or bare(lines[0]).removeprefix(BOM).rstrip() != "---":
        return None
    for index in range(1, len(lines)):
        if bare(lines[index]).rstrip() in _DELIMITERS:
            return index
    return len(lines)  # opened and never closed: the caller reports it


def split_document(path: Path, text: str) -> Document:
    lines = split_lines(text.removeprefix(BOM))
    close = closing_index(lines)
    if close is None:
        raise CeError(
            f"{path}: the file has no YAML frontmatter: its first line must be `---`, followed "
            "by fields such as `prp_id: PRP-43.2.1`, `title: ...`, `status: planning`, and "
            "another `---` line."
        )
    if close == len(lines):
        raise CeError(
            f"{path}: the YAML frontmatter opened on line 1 is never closed: add a `---` line "
            "after its last field."
        )
    return Document(
        yaml_text=_unix("".join(lines[1:close])),
        body=_unix("".join(lines[close + 1 :])),
        body_line=close + 2,
    )


def _unix(text: str) -> str:
    return text.replace("\r\n", "\n")


def load_yaml(path: Path, yaml_text: str) -> Any:
    """Safe load: plain data only; a tag that would build an object is an error."""
    try:
        _refuse_reused_anchors(yaml_text)
        data = safe_load(yaml_text)
        # A surrogate is in the text or made by a `\\u` escape: with neither, none to join.
        if "\\" not in yaml_text and not _SURROGATE.search(yaml_text):
            return data
        return _whole_characters(data)
    except MarkedYAMLError as exc:
        raise CeError(_marked_message(path, exc)) from None
    except ReaderError as exc:
        line = yaml_text.count("\n", 0, exc.position) + 2
        raise CeError(
            f"{path}: the YAML frontmatter has a character YAML does not allow on line {line} "
            f"(code point {exc.character:#06x}): remove it."
        ) from None
    except YAMLError as exc:
        raise CeError(f"{path}: the YAML frontmatter is malformed: {exc}. Fix the YAML.") from None
    except RecursionError:
        raise CeError(
            f"{path}: the YAML frontmatter is nested too deeply to read: flatten it."
        ) from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _whole_characters(data: Any) -> Any:
    """YAML's `\\u` escapes are UTF-16 units: a JSON-style pair (`\\ud83d\\ude00`) is joined
    into its character and a lone half becomes U+FFFD, so every string can be written as UTF-8
    (commit messages, files) later."""
    if isinstance(data, str):
        if not _SURROGATE.search(data):
            return data
        return data.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(data, dict):
        return {_whole_characters(key): _whole_characters(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_whole_characters(item) for item in data]
    return data


_MAYBE_ANCHOR = re.compile(r"(?:^|[\s\[{,])&[^\s]")


def _refuse_reused_anchors(yaml_text: str) -> None:
    """A reused anchor is the author's mistake (the second silently wins): a ComposerError,
    as libyaml's composer raises, where ruamel's pure one only warns. Its own pass over the
    parser's events, so it holds whichever loader builds the data; only a text with what may be
    an anchor (`&name` after a space or `[{,`, not the `&` of "R&D" or "A & B") pays for it."""
    if _MAYBE_ANCHOR.search(yaml_text) is None:
        return
    seen: dict[str, Any] = {}
    for event in YAML(typ="safe", pure=True).parse(yaml_text):
        anchor = None if isinstance(event, AliasEvent) else getattr(event, "anchor", None)
        if anchor is None:
            continue
        if anchor in seen:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                seen[anchor],
                "second occurrence",
                event.start_mark,
            )
        seen[anchor] = event.start_mark


def _duplicate_anchor_message(path: Path, exc: MarkedYAMLError) -> str:
    named = re.search(r"anchor '([^']*)'", str(exc.context))
    anchor = f"`&{named.group(1)}`" if named else "(`&name`)"
    lines = ""
    if exc.context_mark is not None and exc.problem_mark is not None:
        lines = f" (lines {exc.context_mark.line + 2} and {exc.problem_mark.line + 2})"
    return (
        f"{path}: the YAML frontmatter defines the same anchor {anchor} twice{lines}: give "
        "each anchor its own name, or quote the value that starts with `&`."
    )


def _marked_message(path: Path, exc: MarkedYAMLError) -> str:
    if "duplicate anchor" in f"{exc.context} {exc.problem}":
        return _duplicate_anchor_message(path, exc)
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark is not None else ""
    problem = exc.problem or "invalid YAML"
    if exc.context and exc.context_mark is not None:
        problem += f" ({exc.context} at line {exc.context_mark.line + 2})"
    if isinstance(exc, ConstructorError) and "tag" in problem:
        fix = "ce reads plain YAML data only: remove the `!` tag"
    else:
        fix = (
            "fix the YAML there (quote values that contain ': ' or ' #', or that start with "
            "a special character such as `*`, `&`, `!`, `[`, `{`)"
        )
    return f"{path}: the YAML frontmatter is malformed{where}: {problem}; {fix}."
