"""Start-up: each command imports only what it uses (untimed: which modules were loaded)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import ce.cli
from ce.cli.group import COMMAND_TABLE, all_commands

# Run the CLI in a fresh interpreter, then print every module it had loaded as JSON on stderr.
_LOADED = """
import contextlib, json, sys
from ce.cli import run
with contextlib.redirect_stdout(sys.stderr):
    code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
HEAVY = ("pydantic", "rich", "ruamel", "_ruamel_yaml")


def loaded(cwd: Path, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["code"] == 0, done.stderr
    return set(result["modules"])


def top_packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_help_imports_no_command(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    assert not top_packages(modules) & set(HEAVY)
    assert not {m for m in modules if m.startswith(("ce.run", "ce.agents", "ce.ui", "ce.prp"))}
    assert {m for m in modules if m.startswith("ce.cli.")} == {"ce.cli.group"}  # click's group


def test_analyze_deps_loads_neither_pydantic_nor_rich_nor_yaml(tmp_path: Path) -> None:
    items = [{"id": f"P{n}", "dependencies": [f"P{n - 1}"] if n else [], "files": ["a"]}
             for n in range(3)]  # fmt: skip
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"items": items}))
    modules = loaded(tmp_path, "analyze-deps", str(path))
    assert not top_packages(modules) & set(HEAVY)
    assert not {m for m in modules if m.startswith(("ce.run", "ce.agents", "ce.ui"))}
    assert not modules & {"dataclasses", "inspect", "pathlib"}  # a third of its imports


def test_status_loads_neither_the_engine_nor_the_agents(repo: Path) -> None:
    modules = loaded(repo, "status")
    assert not top_packages(modules) & {"ruamel", "_ruamel_yaml"}  # pydantic reads checkpoints
    engine = {"ce.run.engine", "ce.run.lane", "ce.run.worker", "ce.run.load", "ce.agents"}
    assert not engine & modules
    assert not {m for m in modules if m.startswith(("ce.agents", "ce.plan", "ce.prp"))}


def test_the_help_table_is_every_command_with_its_own_short_help() -> None:
    defined: dict[str, tuple[str, click.Command]] = {}
    for info in pkgutil.iter_modules(ce.cli.__path__):
        commands: list[click.Command] = getattr(
            importlib.import_module(f"ce.cli.{info.name}"), "COMMANDS", []
        )
        defined.update({str(command.name): (info.name, command) for command in commands})
    assert sorted(defined) == sorted(COMMAND_TABLE) == sorted(all_commands())
    for name, (where, command) in defined.items():
        assert COMMAND_TABLE[name] == (where, command.get_short_help_str(limit=1000)), name


@pytest.mark.parametrize("name", sorted(COMMAND_TABLE))
def test_each_command_shows_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert ce.cli.run([name, "--help"]) == 0
    assert f"Usage: ce {name}" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert ce.cli.run(["bogus"]) == 2
    assert "No such command 'bogus'" in capsys.readouterr().err
