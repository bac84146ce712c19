"""`ce init`: the files a repository needs to use `ce` from Claude Code and from the shell.

Idempotent: a file already holding what `ce` would write is left alone, and one holding
anything else is the user's and is kept unless `force`. `.gitignore` is only ever appended to.
"""

from __future__ import annotations

import enum
import re
import tomllib
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


# What the slash commands say when the command is not there, for each way of calling `ce`.
INSTALLED = "ce"
IF_MISSING_INSTALLED = """\
If the shell answers `ce: command not found` (exit code 127), `ce` is not installed for this
user. Do not try `uv run ce` instead: outside a project that depends on `ce` it fails and leaves
a `.venv` and `uv.lock` behind. Tell the user to install it once, then run the command again:

```bash
uv tool install /path/to/ce   # a checkout of ce, or its git URL: uv tool install git+URL
pipx install /path/to/ce      # the same with pipx
```"""
PROJECT = "uv run ce"
IF_MISSING_PROJECT = """\
This project has `ce` as a dependency, so it runs through uv. If uv answers `Failed to spawn:
ce`, the project's environment is not set up: tell the user to run `uv sync` here, then run the
command again."""


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
    steps = [_write(root, path, command_text(root, name), force) for path, name in FILES]
    steps.append(_ignore(root, IGNORE_LINE))
    return steps


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def command_text(root: Path, name: str) -> str:
    """The template with the way this repository calls `ce`: the installed command, or
    `uv run ce` in a project that has `ce` as a dependency (or is ce itself)."""
    project = depends_on_ce(root / "pyproject.toml")
    invocation, if_missing = (
        (PROJECT, IF_MISSING_PROJECT) if project else (INSTALLED, IF_MISSING_INSTALLED)
    )
    text = template(name).replace("{{ce}}", invocation)
    return text.replace("{{if_missing}}", if_missing)


def depends_on_ce(pyproject: Path) -> bool:
    """True when this pyproject is ce's, or lists `ce` in its dependencies or groups."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    project = data.get("project", {})
    if not isinstance(project, dict):
        return False
    if project.get("name") == "ce":
        return True
    lists = [project.get("dependencies", [])]
    for table in (project.get("optional-dependencies"), data.get("dependency-groups")):
        lists += list(table.values()) if isinstance(table, dict) else []
    requirements = (r for found in lists if isinstance(found, list) for r in found)
    return any(_requirement_name(r) == "ce" for r in requirements if isinstance(r, str))


def _requirement_name(requirement: str) -> str:
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", name[1]).lower() if name else ""


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
