"""The package's import graph: arrows point one way (DESIGN.md § Layers), so no module of `ce`
imports, even only for type checking, a module that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "ce").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(name: str, path: Path, modules: Mapping[str, Path]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, base] if base else kept)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # `from ce.cli import batch` needs ce.cli.batch, not what ce.cli's body imports.
            yield from submodules if all(m in modules for m in submodules) else [base]


# Known cycles, each to be broken, not added to (none left).
_KNOWN: set[tuple[str, str]] = set()


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {
            m
            for m in _imported(name, path, modules)
            if m in modules and m != name and (name, m) not in _KNOWN
        }
        for name, path in modules.items()
    }


def _cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (first module repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        stack = [(start, iter(sorted(graph[start])))]
        on_path = {start}
        path.append(start)
        while stack:
            node, rest = stack[-1]
            step = next(rest, None)
            if step is None:
                stack.pop()
                on_path.discard(path.pop())
                done.add(node)
            elif step in on_path:
                return [*path[path.index(step) :], step]
            elif step not in done:
                stack.append((step, iter(sorted(graph[step]))))
                on_path.add(step)
                path.append(step)
    return None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycle(_graph()) is None


def test_the_known_cycles_are_still_there() -> None:
    # Once one is broken, its entry goes: it must not hide a new cycle through the same modules.
    modules = _modules()
    for name, imported in _KNOWN:
        assert imported in set(_imported(name, modules[name], modules)), (name, imported)


# What a Ray node's worker imports to run an actor (each launch starts a new worker): not the
# batch's machinery, which only the coordinator runs.
_NODE_MODULES = ("ce.run.backends.ray_node", "ce.agents.script", "ce.agents.claude")
_COORDINATOR_ONLY = ("ce.run.load", "ce.run.checkpoint", "ce.plan", "ce.prp.discover", "ruamel")


def test_a_ray_node_imports_none_of_the_batchs_machinery() -> None:
    probe = (
        f"import sys\nfor name in {_NODE_MODULES!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({_COORDINATOR_ONLY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=SRC
    )
    assert done.stdout.strip() == "[]", done.stdout
