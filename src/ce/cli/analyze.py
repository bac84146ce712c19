"""`ce analyze-deps`: the dependency analyzer contract of DESIGN.md."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
