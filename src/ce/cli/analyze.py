"""`ce analyze-deps`: the dependency analyzer contract of DESIGN.md."""

from __future__ import annotations

from pathlib import Path

import click

from ce.core.errors import CeError
from ce.plan.deps import analyze_file, cycle_message, render


@click.command("analyze-deps")
@click.argument("file", type=click.Path(path_type=Path))
def analyze_deps(file: Path) -> None:
    """Plan the items of FILE.json: stages, file conflicts, cycles.

    \b
    Input:  {"items": [{"id": "PRP-1.1", "dependencies": [], "files": ["src/a.py"]}]}
            (`depends_on` is accepted for `dependencies`; ids come back as written)
    Output: {"sorted_order": [...], "stages": {"1": [...]}, "file_conflicts": {...},
             "has_cycles": false}   (plus "cycle": [...] and exit 2 when there is one)
    """
    result = analyze_file(file)
    click.echo(render(result))
    if result["has_cycles"]:
        raise CeError(cycle_message(str(file), result["cycle"]))


COMMANDS: list[click.Command] = [analyze_deps]
