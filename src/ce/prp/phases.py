"""Headings, fenced blocks and phases of a PRP's markdown body.

A phase is a `### Phase N: Title (duration)` heading inside the implementation section (a `## `
heading containing "Implementation"), up to the next phase or `## ` heading. Fenced blocks whose
info string is `sh run` or `bash run` are the phase's script; other blocks are documentation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ce.prp.model import Phase
from ce.prp.normalize import one_line

RUN_INFO_STRINGS = (("sh", "run"), ("bash", "run"))

_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*))?")
# Fences may be indented (inside list items); a backtick fence's info string has no backtick.
_FENCE = re.compile(r"([ \t]*)(`{3,}|~{3,})(.*)")
_MARKS = ("#", "`", "~")  # what a heading or a fence line starts with, after its indent
_PHASE = re.compile(r"phase\s+(\d{1,6})(?!\d)(?!\.\d)(?=$|[\s:.\-–—(])[\s:.\-–—]*(.*)", re.I)
_UNIT = r"(?:m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|s|secs?|seconds?)"
_DURATION = re.compile(
    rf"\s*\(\s*(?:[~≈]\s*)?(?:\d[\d.]*\s*(?:(?:-|–|—|to)\s*\d[\d.]*\s*)?{_UNIT}\b"
    r"|(?:day|days|week|weeks|sprint)\s+\d)[^()]*\)\s*$",
    re.I,
)


@dataclass(frozen=True, kw_only=True)
class Heading:
    level: int
    text: str
    line: int  # 1-based, within the body


@dataclass(frozen=True, kw_only=True)
class Fence:
    info: str
    content: str
    line: int

    @property
    def is_run(self) -> bool:
        return tuple(self.info.split()) in RUN_INFO_STRINGS


def scan_markdown(body: str) -> list[Heading | Fence]:
    """The ATX headings and fenced blocks of `body`, in order; headings inside fences are not."""
    lines = body.split("\n")
    items: list[Heading | Fence] = []
    index = 0
    while index < len(lines):
        if lines[index].lstrip(" \t")[:1] not in _MARKS:  # most lines: neither kind
            index += 1
            continue
        fence = _FENCE.fullmatch(lines[index])
        if fence and not (fence[2].startswith("`") and "`" in fence[3]):
            end = _fence_end(lines, index, fence[2])
            content = [_dedent(line, len(fence[1])) for line in lines[index + 1 : end]]
            text = "".join(f"{line}\n" for line in content)
            items.append(Fence(info=fence[3].strip(), content=text, line=index + 1))
            index = end + 1
            continue
        heading = _HEADING.fullmatch(lines[index])
        if heading:
            text = _heading_text(heading[2] or "")
            items.append(Heading(level=len(heading[1]), text=text, line=index + 1))
        index += 1
    return items


def _fence_end(lines: Sequence[str], start: int, opener: str) -> int:
    """Index of the closing fence line; an unclosed fence runs to the end (as in CommonMark)."""
    closer = re.compile(rf"[ \t]*{re.escape(opener[0])}{{{len(opener)},}}[ \t]*")
    for index in range(start + 1, len(lines)):
        if closer.fullmatch(lines[index]):
            return index
    return len(lines)


def _dedent(line: str, width: int) -> str:
    leading = len(line) - len(line.lstrip(" \t"))
    return line[min(leading, width) :]


def _heading_text(raw: str) -> str:
    text = _CLOSING_HASHES.sub("", raw.rstrip())  # optional closing #s
    return text.strip()


_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")


def first_title(items: Sequence[Heading | Fence]) -> str | None:
    """The text of the first `# ` heading."""
    for item in items:
        if isinstance(item, Heading) and item.level == 1 and item.text:
            return one_line(item.text)
    return None


@dataclass(kw_only=True)
class _Draft:
    number: int
    title: str
    blocks: list[str] = field(default_factory=list)


def extract_phases(
    items: Sequence[Heading | Fence], *, title: str, where: str, first_line: int
) -> tuple[tuple[Phase, ...], tuple[str, ...]]:
    """The phases of a body and warnings (`where` names the file, `first_line` the body's line)."""
    inside = _implementation_flags(items)
    stray = _stray_phase_warnings(items, inside, where=where, first_line=first_line)
    numbered = [
        item
        for item, flag in zip(items, inside, strict=True)
        if flag and isinstance(item, Heading) and _phase_heading(item) is not None
    ]
    if not numbered:
        single, unrun = _single_phase(
            items, inside, title=title, where=where, first_line=first_line
        )
        return single, (*stray, *unrun)
    drafts: list[_Draft] = []
    warnings: list[str] = []
    current: _Draft | None = None
    for item, flag in zip(items, inside, strict=True):
        line = first_line + item.line - 1
        if isinstance(item, Heading):
            current = _next_phase(
                item,
                inside=flag,
                current=current,
                drafts=drafts,
                warnings=warnings,
                where=f"{where}:{line}",
            )
        elif item.is_run and current is not None:
            current.blocks.append(item.content)
        elif item.is_run:
            warnings.append(
                f"{where}:{line}: this `{item.info}` block is outside the phases of the "
                "implementation section, so it will not be run; move it under a "
                "`### Phase N: ...` heading."
            )
    phases = tuple(Phase(number=d.number, title=d.title, blocks=tuple(d.blocks)) for d in drafts)
    return phases, (*stray, *warnings)


def _stray_phase_warnings(
    items: Sequence[Heading | Fence], inside: Sequence[bool], *, where: str, first_line: int
) -> list[str]:
    """`### Phase N` headings outside the implementation section are not phases: said, since
    the author may have meant them as phases (a misnamed section makes a PRP one phase)."""
    warnings = []
    section: str | None = None
    for item, flag in zip(items, inside, strict=True):
        if not isinstance(item, Heading):
            continue
        if item.level <= 2:
            section = item.text
        elif not flag and _phase_heading(item) is not None:
            under = f"under `## {section}`" if section else "before any `## ` section"
            warnings.append(
                f"{where}:{first_line + item.line - 1}: `### {item.text}` is {under}, outside "
                "the implementation section, so it is not a phase ce runs; move it under "
                "`## Implementation` if it is one."
            )
    return warnings


def _next_phase(
    heading: Heading,
    *,
    inside: bool,
    current: _Draft | None,
    drafts: list[_Draft],
    warnings: list[str],
    where: str,
) -> _Draft | None:
    """The phase the lines after `heading` belong to."""
    if heading.level <= 2:
        return None
    phase = _phase_heading(heading) if inside and heading.level == 3 else None
    if phase is None:
        return current  # a sub-heading stays in its phase
    number, title = phase
    if any(draft.number == number for draft in drafts):
        warnings.append(
            f"{where}: a second `Phase {number}` heading; the first one is kept and this "
            "section is ignored. Renumber the phases."
        )
        return None
    drafts.append(_Draft(number=number, title=title))
    return drafts[-1]


def _single_phase(
    items: Sequence[Heading | Fence],
    inside: Sequence[bool],
    *,
    title: str,
    where: str,
    first_line: int,
) -> tuple[tuple[Phase, ...], tuple[str, ...]]:
    """No phase headings: one phase with the run blocks of the implementation section (or of
    the whole body when there is none)."""
    anywhere = not any(inside)
    blocks: list[str] = []
    warnings: list[str] = []
    for item, flag in zip(items, inside, strict=True):
        if isinstance(item, Fence) and item.is_run:
            if flag or anywhere:
                blocks.append(item.content)
            else:
                warnings.append(
                    f"{where}:{first_line + item.line - 1}: this `{item.info}` block is "
                    "outside the implementation section, so it will not be run."
                )
    return (Phase(number=1, title=title, blocks=tuple(blocks)),), tuple(warnings)


def _implementation_flags(items: Sequence[Heading | Fence]) -> list[bool]:
    """For each item: is it inside a `## ...Implementation...` section?"""
    flags: list[bool] = []
    inside = False
    for item in items:
        if isinstance(item, Heading) and item.level <= 2:
            inside = item.level == 2 and "implementation" in item.text.lower()
        flags.append(inside)
    return flags


def _phase_heading(heading: Heading) -> tuple[int, str] | None:
    if heading.level != 3:
        return None
    match = _PHASE.fullmatch(heading.text.strip("* "))
    if match is None:
        return None
    number = int(match[1])
    title = _DURATION.sub("", match[2].strip("* ")).strip()
    return number, one_line(title) or f"Phase {number}"
