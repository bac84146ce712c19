"""No `git gc --auto` in the middle of a batch: every git ce starts (its own, the agents', the
checks') runs with `maintenance.auto=false`, and the repository's maintenance runs once, when the
batch is cleaned up, under the user's own settings and hooks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import ce


def _loose_objects_gc_wants(repo: Path) -> None:
    """Two loose blobs in `objects/17/`: with `gc.auto=1` git's estimate then asks for a gc."""
    found: list[str] = []
    for n in range(100_000):
        content = f"loose {n}\n".encode()
        if hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest().startswith("17"):
            path = repo.parent / f"loose-{len(found)}"
            path.write_bytes(content)
            found.append(str(path))
            if len(found) == 2:
                git(repo, "hash-object", "-w", *found)
                return
    raise AssertionError("no two blobs hash to 17...")


def test_auto_maintenance_runs_once_at_the_end_not_at_every_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(
            id=f"PRP-7.1.{n}", title=f"P{n}", phases=[[write(f"{n}.txt", "x")]], files=[f"{n}.txt"]
        )
        for n in (1, 2)
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    git(repo, "config", "gc.auto", "1")
    git(repo, "config", "gc.autoDetach", "false")
    _loose_objects_gc_wants(repo)
    log = tmp_path / "auto-gc.log"
    hook = repo / ".git" / "hooks" / "pre-auto-gc"  # refuses: every auto gc would ask again
    hook.write_text(f'#!/bin/sh\npwd -P >> "{log}"\nexit 1\n', encoding="utf-8")
    hook.chmod(0o755)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "COMPLETED"
    assert log.read_text(encoding="utf-8").splitlines() == [str(repo.resolve())]
