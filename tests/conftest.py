"""Shared fixtures: real git repositories in temporary directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from ce.git import init_repo

# Property tests draw from one fixed seed, printed in the header, so a run is repeatable: a
# failure seen once is seen again. CE_FUZZ_SEED=N (or --hypothesis-seed=N) explores others.
FUZZ_SEED = os.environ.get("CE_FUZZ_SEED", "20261202")
# No example database either: what an earlier run found must not change what this one draws.
settings.register_profile("ce", database=None)
settings.load_profile("ce")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = FUZZ_SEED


# The Ray tests share one cluster (`ray_cluster`): all of them on one xdist worker. (What
# `--dist loadgroup` would do, were its group suffix not lost on pytest 9's node ids.)
SHARED_CLUSTER_MODULES = ("tests/test_ray_backend.py", "tests/test_ray_shim.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class _SharedCluster(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.partition("::")[0]
            return "ray-cluster" if module in SHARED_CLUSTER_MODULES else nodeid

    return _SharedCluster(config, log)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The Ray tests' one cluster (`raykit.local_ray`: a head and two nodes of 2 `ce_slot`s);
    a test may add or remove nodes, and the next one finds the cluster as it left it."""
    from raykit import local_ray  # sets what Ray reads when imported: only for the Ray tests

    with local_ray() as running:
        yield running


def _seed_line(config: pytest.Config) -> str:
    return (
        f"hypothesis seed: {config.getoption('hypothesis_seed')} "
        "(CE_FUZZ_SEED=N or --hypothesis-seed=N to change it)"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return _seed_line(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The header is hidden by -q: a failure still says which seed reproduces it.
    if terminalreporter.stats.get("failed"):
        terminalreporter.write_line(_seed_line(terminalreporter.config))


IDENTITY = ("ce tests", "tests@example.invalid")


def make_repo(path: Path) -> Path:
    """A repository at `path` on `main` with a repo-local identity and one commit (README.md)."""
    repo = init_repo(path, branch="main", user=IDENTITY)
    # A developer's global config must not sign (and prompt) or hook into test commits.
    repo.git("config", "commit.gpgsign", "false")
    repo.git("config", "tag.gpgsign", "false")
    repo.git("config", "core.hooksPath", "/dev/null")
    (path / "README.md").write_text("# test repo\n", encoding="utf-8")
    repo.commit_all("Initial commit")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository (see `make_repo`) at `tmp_path / "repo"`; its parent holds worktrees."""
    return make_repo(tmp_path / "repo")
