"""`ce init`: the files a repository needs to use `ce` from Claude Code and from the shell.

Idempotent: a file already holding what `ce` would write is left alone, and one holding
anything else is the user's and is kept unless `force`. `.gitignore` is only ever appended to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).parent / "agents" / "templates" / "init"
IGNORE_LINE = ".ce/tmp/"
# (path in the repository, template name)
FILES = (
    (Path(".claude") / "commands" / "batch-exe-prp.md", "batch-exe-prp.md"),
    (Path(".claude") / "commands" / "execute-prp.md", "execute-prp.md"),
    (Path(".ce") / "config.toml", "config.toml"),
)


class Action(enum.Enum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    KEPT = "kept"  # differs from ce's version: the user's edits, not overwritten
    OVERWRITTEN = "overwritten"
    APPENDED = "appended"


@dataclass(frozen=True, kw_only=True)
class Step:
    path: Path  # relative to the repository
    action: Action


def init_repository(root: Path, *, force: bool = False) -> list[Step]:
    steps = [_write(root, path, template(name), force) for path, name in FILES]
    steps.append(_ignore(root, IGNORE_LINE))
    return steps


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _write(root: Path, relative: Path, text: str, force: bool) -> Step:
    target = root / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return Step(path=relative, action=Action.CREATED)
    if target.read_text(encoding="utf-8", errors="replace") == text:
        return Step(path=relative, action=Action.UNCHANGED)
    if not force:
        return Step(path=relative, action=Action.KEPT)
    target.write_text(text, encoding="utf-8")
    return Step(path=relative, action=Action.OVERWRITTEN)


def _ignore(root: Path, line: str) -> Step:
    gitignore = root / ".gitignore"
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    present = {entry.strip() for entry in text.splitlines()}
    # `.ce/tmp` and `/.ce/tmp/` ignore the same directory here.
    if present & {line, line.rstrip("/"), "/" + line, "/" + line.rstrip("/")}:
        return Step(path=Path(".gitignore"), action=Action.UNCHANGED)
    separator = "" if not text or text.endswith("\n") else "\n"
    gitignore.write_text(f"{text}{separator}{line}\n", encoding="utf-8")
    return Step(path=Path(".gitignore"), action=Action.APPENDED if text else Action.CREATED)
