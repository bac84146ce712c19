"""`ce analyze-deps`: the dependency analyzer contract of DESIGN.md."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ce.core.errors import CeError
from ce.plan.deps import analyze_file, cycle_message


@click.command("analyze-deps")
@click.argument("file", type=click.Path(path_type=Path))
def analyze_deps(file: Path) -> None:
    """Plan the items of FILE.json: stages, file conflicts, cycles.

    \b
    Input:  {"items": [{"id": "PRP-1.1", "dependencies": [], "files": ["src/a.py"]}]}
    Output: {"sorted_order": [...], "stages": {"1": [...]}, "file_conflicts": {...},
             "has_cycles": false}   (plus "cycle": [...] and exit 2 when there is one)
    """
    result = analyze_file(file)
    click.echo(json.dumps(result, indent=2))
    if result["has_cycles"]:
        raise CeError(cycle_message(str(file), result["cycle"]))


COMMANDS: list[click.Command] = [analyze_deps]
