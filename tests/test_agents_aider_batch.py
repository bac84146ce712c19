"""`ce batch-exe --executor aider` end to end: the real aider (pinned, in its own environment
under tests/.tools) edits each PRP's linked worktree from a scripted local Chat Completions API,
`ce` commits each phase, merges, and keeps aider's printed cost in each PRP's record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent_tools import require_aider
from batchkit import Spec, git, make_batch_repo
from ce.cli import run
from fake_openai_chat import MODEL, FakeChat, Reply, Step, search_replace


def config(binary: Path, args: Sequence[str]) -> str:
    # --no-stream: aider prices the server's own usage (1000 in, 200 out: $0.006), exactly.
    return (
        "[monitor]\npoll_seconds = 0.2\nretries = 0\n"
        f"[executor.aider]\nbinary = {json.dumps(str(binary))}\n"
        f"extra_args = {json.dumps([*args, '--no-stream'])}\n"
        f'models = {{ sonnet = "{MODEL}", haiku = "{MODEL}", opus = "{MODEL}" }}\n'
    )


def batch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    specs: Sequence[Spec],
    script: Mapping[str, Sequence[Step]],
) -> tuple[int, dict[str, Any], Path]:
    """Run batch 9 of `specs` against the scripted answers: exit code, summary, repository."""
    binary = require_aider()
    home = tmp_path / "home"
    home.mkdir()
    with FakeChat(script) as api:
        repo = make_batch_repo(
            tmp_path / "repo", specs, batch="9", config=config(binary, api.aider_args(home))
        )
        for variable, value in api.env(home).items():
            monkeypatch.setenv(variable, value)
        monkeypatch.chdir(repo)
        code = run(["batch-exe", "--batch", "9", "--executor", "aider", "--json"])
    assert (api.outbound, api.refused) == ([], [])
    out = capsys.readouterr()
    assert code in (0, 1), out.err[-3000:]
    return code, json.loads(out.out), repo


def test_two_parallel_prps_merge_with_ces_phase_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(id="PRP-9.1.1", title="North", phases=[["true"], ["true"]], files=["north.txt"]),
        Spec(id="PRP-9.1.2", title="South", phases=[["true"]], files=["south.txt"]),
    ]
    script = {
        "Implement phase 1 of PRP-9.1.1": [Reply(text=search_replace("north.txt", "", "n\n"))],
        "Implement phase 2 of PRP-9.1.1": [Reply(text=search_replace("north.txt", "n\n", "N\n"))],
        "Implement phase 1 of PRP-9.1.2": [Reply(text=search_replace("south.txt", "", "s\n"))],
    }

    code, summary, repo = batch(tmp_path, monkeypatch, capsys, specs, script)

    assert code == 0, summary
    assert summary["status"] == "COMPLETED"
    assert (repo / "north.txt").read_text() == "N\n"
    assert (repo / "south.txt").read_text() == "s\n"
    merged = git(repo, "log", "--format=%s", "main").splitlines()
    for subject in [
        *("PRP-9.1.1: Phase 1 - Step 1", "PRP-9.1.1: Phase 2 - Step 2", "Merge PRP-9.1.1: North"),
        *("PRP-9.1.2: Phase 1 - Step 1", "Merge PRP-9.1.2: South"),
    ]:
        assert subject in merged  # ce's checkpoint commits, merged
    north, south = (summary["prps"][prp] for prp in ("PRP-9.1.1", "PRP-9.1.2"))
    assert (north["cost_usd"], north["input_tokens"], north["output_tokens"]) == (0.012, 2000, 400)
    assert (south["cost_usd"], south["input_tokens"], south["output_tokens"]) == (0.006, 1000, 200)
    assert summary["usage"]["cost_usd"] == 0.018
    assert ".aider" not in git(repo, "log", "--name-only", "--format=", "main")


def test_a_phase_that_changes_nothing_fails_its_prp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = Spec(id="PRP-9.1.1", title="Idle", phases=[["true"]], files=["idle.txt"])
    script = {"Implement phase 1 of PRP-9.1.1": [Reply(text="Nothing needs to change.")]}

    code, summary, repo = batch(tmp_path, monkeypatch, capsys, [spec], script)

    assert code == 1
    record = summary["prps"]["PRP-9.1.1"]
    assert record["state"] == "failed"
    assert record["error"] == "aider changed nothing in phase 1"
    assert record["cost_usd"] == 0.006  # the answer was paid for all the same
    assert not (repo / "idle.txt").exists()
