"""One list each for executors, model tiers, schedules, conflict policies and backends: the command
line's choices and the configuration's validation are both derived from it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ce.cli.batch import batch_exe, execute_prp
from ce.config import load_config
from ce.core.errors import CeError
from ce.core.vocab import BACKENDS, CONFLICT_POLICIES, EXECUTORS, MODEL_TIERS, SCHEDULES

CHOICES = {
    "executor": EXECUTORS,
    "schedule": SCHEDULES,
    "on_conflict": CONFLICT_POLICIES,
    "backend": BACKENDS,
}
BATCH_ONLY = {"schedule"}  # execute-prp runs one PRP: no schedule to choose


@pytest.mark.parametrize("command", [batch_exe, execute_prp], ids=["batch-exe", "execute-prp"])
def test_cli_choices_are_the_lists(command: click.Command) -> None:
    choices = {
        param.name: tuple(param.type.choices)
        for param in command.params
        if isinstance(param.type, click.Choice)
    }
    expected = {k: v for k, v in CHOICES.items() if command is batch_exe or k not in BATCH_ONLY}
    assert choices == expected
    (model,) = (param for param in command.params if param.name == "model")
    # A tier or any model name: the tiers are offered, from the one list.
    assert model.make_metavar(click.Context(command)) == f"[{'|'.join(MODEL_TIERS)}|NAME]"


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("executor", EXECUTORS),
        ("run.schedule", SCHEDULES),
        ("lane.conflict_policy", CONFLICT_POLICIES),
    ],
)
def test_the_configuration_accepts_exactly_the_lists(
    tmp_path: Path, key: str, values: tuple[str, ...]
) -> None:
    *group, key = key.split(".")  # a top-level key of the file, kept in a sub-record
    for value in values:
        config = load_config(tmp_path, {key: value})
        assert getattr(getattr(config, group[0]) if group else config, key) == value
    with pytest.raises(CeError, match=key):
        load_config(tmp_path, {key: "nonsense"})
