"""Crash safety of the speculative lane and of batching (issue 17 item 1): SIGKILL at every
journal write around the lane's compare-and-swaps (advance, merged), then --resume, with
`merge_parallel > 1` and with `merge_batch > 1`. A speculation is never a fact until its
compare-and-swap: every interrupted run ends exactly as an uninterrupted one (test_crash's
checks)."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchkit import git, make_batch_repo
from test_crash import SPECS, assert_exact, ce, copy_of, finish

# Merged trees are checked (a short sleep), so that several are checked at once.
CONFIG = """\
executor = "script"
max_parallel = 4
{lane}
[validate]
level2 = ""
level3 = "sleep 0.5"
[monitor]
poll_seconds = 0.2
grace_seconds = 0.5
"""
MODES = {"speculative": "merge_parallel = 3", "batched": "merge_parallel = 1\nmerge_batch = 3"}
LANE_WRITES = {"advance", "merged"}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_sigkill_at_every_lane_write_then_resume(tmp_path: Path, mode: str) -> None:
    config = CONFIG.format(lane=MODES[mode])
    template = make_batch_repo(tmp_path / "template" / "repo", SPECS, config=config)
    reference = copy_of(template, tmp_path / "reference" / "repo")
    done = ce(reference)
    assert done.returncode == 0, done.stderr
    tree = assert_reference(reference)
    journal = (reference / ".ce/tmp/batch-7.journal.jsonl").read_text().splitlines()
    points = [
        k
        for k, line in enumerate(journal, start=1)
        if {json.loads(line).get("intent"), json.loads(line).get("fact")} & LANE_WRITES
    ]
    advances = [
        json.loads(journal[k - 1]) for k in points if '"intent": "advance"' in journal[k - 1]
    ]
    if mode == "batched":  # some trees held several branches (they waited for the head's check)
        assert any("prps" in entry for entry in advances)

    def kill_at(k: int) -> bool:
        repo = copy_of(template, tmp_path / f"k{k}" / "repo")
        killed = ce(repo, env={"CE_TEST_KILL_AT": str(k)})
        if killed.returncode == 0:
            return False
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        finish(repo)
        assert_exact(repo, tree)
        return True

    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        survived = list(pool.map(kill_at, points))
    assert sum(survived) >= len(points) - 2  # the last writes may come after the batch merged


def assert_reference(repo: Path) -> str:
    """The uninterrupted run merged every PRP once; its target tree."""
    tree = git(repo, "rev-parse", "main^{tree}")
    assert_exact(repo, tree)
    return tree
