"""The lines of a failed check's output that say why it failed: what the summary, `--json` and
the reports show of it (the whole output is in the PRP's log)."""

from __future__ import annotations

import re
from collections.abc import Sequence

LINES_PER_CHECK = 20  # at most, of one check's output
CHECKS_PER_PRP = 3  # failed checks shown in full for one PRP
TAIL_LINES = 10  # what is shown of an output in which nothing is recognised

# pytest's short summary (`FAILED tests/x.py::test_y - ...`, `ERROR ...`), its tally line
# (`1 failed, 2 passed in 0.05s`), and any line naming an error (`E   AssertionError: ...`,
# `tests/x.py:5: AssertionError`, `SyntaxError: invalid syntax`, `error: ...` from mypy or a
# compiler).
_SUMMARY = re.compile(r"^(FAILED|ERROR)\b")
_TALLY = re.compile(r"^(FAILED|ERROR)\b|^=*\s*\d+ (failed|errors?)\b")
_MATTERS = re.compile(
    r"^(FAILED|ERROR)\b"
    r"|^=*\s*\d+ (failed|errors?)\b"
    r"|\w*Error\b"
    r"|\berror:",
)


def failure_lines(output: str, cap: int = LINES_PER_CHECK) -> tuple[str, ...]:
    """The lines that matter, in order and each once, at most `cap`; else the last
    `TAIL_LINES` lines."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    seen: set[str] = set()
    matching = []
    for line in lines:
        if _MATTERS.search(line) and line not in seen:
            seen.add(line)
            matching.append(line)
    if not matching:
        return tuple(lines[-min(TAIL_LINES, cap) :])
    if len(matching) <= cap:
        return tuple(matching)
    # Too many: pytest's summary and tally first, then the other lines, in the output's order.
    ranked = sorted(range(len(matching)), key=lambda i: (not _TALLY.search(matching[i]), i))
    kept = sorted(ranked[: cap - 1])
    return (*(matching[i] for i in kept), f"... and {len(matching) - cap + 1} more such lines")


def reason(errors: Sequence[str], excerpt: Sequence[str]) -> str:
    """A failed check in one line: the first failed test (or error line) its output names, then
    what failed (`` `pytest -q` exited 1``)."""
    first = errors[0] if errors else ""
    named = [line for line in excerpt if _SUMMARY.match(line)]
    named = named or [line for line in excerpt if _MATTERS.search(line)]
    if not named:
        return first
    return f"{named[0]} ({first})" if first else named[0]
