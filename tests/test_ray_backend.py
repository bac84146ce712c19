"""`--backend ray` on a real 3-node Ray cluster on 127.0.0.1 (`raycluster`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batchkit import Spec, append, git, make_batch_repo, write
from raycluster import LoopbackCluster, ray_cluster, run_ce

pytestmark = pytest.mark.ray
__all__ = ["ray_cluster"]

CONFIG = """\
executor = "script"
max_parallel = 4
[monitor]
poll_seconds = 0.2
"""


def _specs() -> list[Spec]:
    return [
        Spec(
            id=f"PRP-7.1.{n}",
            title=word,
            phases=[[write(f"{n}/a.txt", word)], [append(f"{n}/a.txt", "more"), "sleep 0.5"]],
            files=[f"{n}/a.txt"],
        )
        for n, word in ((1, "One"), (2, "Two"), (3, "Three"))
    ]


def _twin_repos(tmp_path: Path) -> tuple[Path, Path]:
    """Two repositories with the same history, each in a directory of its own (the PRP
    worktrees go beside the repository)."""
    first = make_batch_repo(tmp_path / "local" / "repo", _specs(), config=CONFIG)
    second = tmp_path / "ray" / "repo"
    second.parent.mkdir()
    shutil.copytree(first, second, symlinks=True)
    return first, second


def _on(cluster: LoopbackCluster) -> tuple[str, ...]:
    return ("--backend", "ray", "--ray-address", cluster.address)


def _history(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%H %P %s", "main").splitlines()


def test_a_batch_through_ray_makes_the_same_commits_as_a_local_run(
    tmp_path: Path, ray_cluster: LoopbackCluster
) -> None:
    local, remote = _twin_repos(tmp_path)
    done = run_ce(local, "batch-exe", "--batch", "7")
    assert done.returncode == 0, done.stderr
    done = run_ce(
        remote,
        "batch-exe",
        "--batch",
        "7",
        "--backend",
        "ray",
        "--ray-address",
        ray_cluster.address,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert _history(remote) == _history(local)
    log = (remote / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log").read_text()
    assert "on Ray node" in log, log
