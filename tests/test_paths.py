"""One matcher: what a declared path covers, asked by the planner's overlap check, the L4 drift
check and the sparse cones, which must agree on every case."""

from __future__ import annotations

import pytest

from ce.core.paths import cone, covers, glob_regex, normalize_path
from ce.plan.graph import PlanItem, file_conflicts
from ce.run.validate import drift
from ce.run.worktree_env import cone_dirs

# (declared, a changed file, whether the declaration covers it)
CASES = [
    ("src/a.py", "src/a.py", True),
    ("./src/a.py", "src/a.py", True),
    ("src/a.py", "./src/a.py", True),
    ("src//a.py", "src/a.py", True),
    ("src/a.py", "src/a.pyc", False),
    ("src/a.py", "src/b.py", False),
    # A literal may be a directory: it covers everything under it.
    ("src", "src/a.py", True),
    ("src", "src/sub/a.py", True),
    ("src", "srcs/a.py", False),
    ("src", "src.py", False),
    ("src/", "src/sub/a.py", True),
    ("./src/", "src/a.py", True),
    ("src/", "srcs/a.py", False),
    # `*` and `?` stay in one directory (fnmatch let `*` cross `/`).
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/sub/a.py", False),
    ("src/*", "src/sub/a.py", False),
    ("src/a?b", "src/a/b", False),
    ("src/?.py", "src/a.py", True),
    ("src/?.py", "src/ab.py", False),
    ("*.md", "README.md", True),
    ("*.md", "docs/a.md", False),  # anchored at the root, unlike gitignore
    ("*/a.py", "src/a.py", True),
    ("*/a.py", "src/sub/a.py", False),
    ("docs/*.md", "src/a.md", False),
    # `**` crosses directories, and `a/**/b` includes `a/b`.
    ("src/**/*.py", "src/a.py", True),
    ("src/**/*.py", "src/x/y/a.py", True),
    ("src/**/*.py", "src/x/y/a.md", False),
    ("src/**", "src/x/y/a.py", True),
    ("**/*.py", "a/b/c.py", True),
    ("**/*.py", "c.py", True),
    ("**", "any/where/at/all.txt", True),
    (".", "any/where.txt", True),
    # Character classes, negated with `!`.
    ("src/[ab].py", "src/a.py", True),
    ("src/[ab].py", "src/c.py", False),
    ("src/[!ab].py", "src/c.py", True),
    ("src/[!ab].py", "src/a.py", False),
]
IDS = [f"{declared} ~ {path}" for declared, path, _ in CASES]


@pytest.mark.parametrize(("declared", "path", "expected"), CASES, ids=IDS)
def test_the_matcher(declared: str, path: str, expected: bool) -> None:
    assert covers(declared, path) is expected


@pytest.mark.parametrize(("declared", "path", "expected"), CASES, ids=IDS)
def test_planner_drift_check_and_sparse_cones_agree(
    declared: str, path: str, expected: bool
) -> None:
    items = [PlanItem(id="A", files=(declared,)), PlanItem(id="B", files=(path,))]
    assert bool(file_conflicts(items)) is expected, "the planner's overlap"
    _, outside = drift([path], [declared])
    assert (not outside) is expected, "the drift check"
    if expected:  # what a declaration covers is checked out in its PRP's sparse worktree
        is_dir = path.startswith(f"{normalize_path(declared)}/")
        cones = cone_dirs([normalize_path(declared)], {declared} if is_dir else set())
        assert checked_out(normalize_path(path), cones), f"sparse cones {cones}"


def checked_out(path: str, cones: list[str] | None) -> bool:
    """In cone mode: the root's files, and everything under a listed directory."""
    if cones is None:
        return True
    return "/" not in path or any(path.startswith(f"{c}/") for c in cones)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("src/", "src"),
        ("src/*.py", "src"),
        ("src/**/*.md", "src"),
        ("pkg/mod_[ab]/x.py", "pkg"),
        ("src/a*", "src"),
        ("*.md", ""),  # the root's files are always checked out
        ("**/*.py", None),  # only the whole tree shows every match
        ("*/a.py", None),
        ("**", None),
    ],
)
def test_cone(pattern: str, expected: str | None) -> None:
    assert cone(pattern) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/a.py", "src/a.py"),
        ("./src/a.py", "src/a.py"),
        ("src\\a.py", "src/a.py"),
        ("src/./sub//a.py", "src/sub/a.py"),
        (" src/ ", "src/"),
        ("./src/", "src/"),
        (".", "**"),
        ("", ""),
    ],
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected


def test_a_literal_counts_as_a_directory_once_something_is_declared_under_it() -> None:
    def overlap(a: str, b: str) -> bool:
        items = [PlanItem(id="A", files=(a,)), PlanItem(id="B", files=(b,))]
        return bool(file_conflicts(items))

    assert overlap("src", "src/*.py")
    assert overlap("src", "src/")
    assert overlap("src/ce", "src/ce/sub/x.py")
    assert not overlap("docs/a.py", "**/*.md")  # a file, as far as the plan can tell
    assert not overlap("src", "srcs/")


def test_regexes_are_compiled_once() -> None:
    assert glob_regex("src/**/*.py") is glob_regex("src/**/*.py")
