"""`ce batch-exe`, `ce execute-prp`: plan and run a batch."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
