"""`ce batch-exe --executor claude` end to end: the real Claude Code CLI (pinned, under
tests/.tools) works in each PRP's worktree against a scripted local Messages API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agent_tools import require_npm_binary
from batchkit import Spec, git, make_batch_repo
from ce.cli import run
from fake_anthropic import Failure, FakeAnthropic, Reply, Step, bash, commit, write


def config(binary: Path) -> str:
    # `executor = "claude"` and an `[executor.claude]` table cannot both be TOML: the name goes
    # inside the table as `name`.
    return (
        "[monitor]\npoll_seconds = 0.2\n"
        '[executor]\nname = "claude"\n'
        f"[executor.claude]\nbinary = {json.dumps(str(binary))}\n"
    )


def spec(prp_id: str, files: Sequence[str], deps: Sequence[str] = ()) -> Spec:
    # The phases' `bash run` blocks are for the script executor; the agent follows the script.
    phases = [["true"] for _ in files]
    return Spec(id=prp_id, title=f"Work {prp_id[-3:]}", phases=phases, files=files, deps=deps)


def phases_script(prp_id: str, files: Sequence[str]) -> list[Step]:
    """An agent that writes one file per phase and commits each phase."""
    steps: list[Step] = []
    for number, name in enumerate(files, start=1):
        steps.append(Reply(text=f"Phase {number}.", tools=[write(name, f"{prp_id} {number}\n")]))
        steps.append(Reply(tools=commit(f"{prp_id}: Phase {number} - Step {number}")))
    return steps


@pytest.fixture
def claude_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's binary; HOME and everything the CLI reads go to a temporary home."""
    binary = require_npm_binary("claude")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield binary


def ce(repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(repo)
    return run(list(args))


def use(api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name, value in api.env(home).items():
        monkeypatch.setenv(name, value)


def test_three_prps_merge_on_main(
    tmp_path: Path,
    claude_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = {
        "PRP-7.1.1": ["core.txt"],
        "PRP-7.2.1": ["left.txt", "left2.txt"],
        "PRP-7.2.2": ["right.txt"],
    }
    specs = [
        spec("PRP-7.1.1", files["PRP-7.1.1"]),
        spec("PRP-7.2.1", files["PRP-7.2.1"], deps=["PRP-7.1.1"]),
        spec("PRP-7.2.2", files["PRP-7.2.2"], deps=["PRP-7.1.1"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(claude_env))
    scripts = {prp: phases_script(prp, names) for prp, names in files.items()}

    with FakeAnthropic(scripts) as api:
        use(api, monkeypatch, tmp_path / "home")
        code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--json", "--model", "haiku")

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    summary = json.loads(out.out)
    assert summary["status"] == "COMPLETED"
    merges = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert sorted(s for s in merges if s.startswith("Merge ")) == [
        "Merge PRP-7.1.1: Work 1.1",
        "Merge PRP-7.2.1: Work 2.1",
        "Merge PRP-7.2.2: Work 2.2",
    ]
    for prp, names in files.items():
        for number, name in enumerate(names, start=1):
            assert (repo / name).read_text() == f"{prp} {number}\n"
    assert {seen.body["model"].split("-")[1] for seen in api.seen} == {"haiku"}
    assert api.outbound == []


def test_failures_each_have_their_reason(
    tmp_path: Path,
    claude_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    specs = [
        spec("PRP-7.1.1", ["a.txt"]),
        spec("PRP-7.1.2", ["b.txt"]),
        spec("PRP-7.1.3", ["c.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(claude_env))
    before = git(repo, "rev-parse", "main")
    scripts: dict[str, list[Step]] = {
        # The API fails on the first request.
        "PRP-7.1.1": [Failure(status=500, message="upstream exploded")],
        # The agent edits, then says it is done without committing anything.
        "PRP-7.1.2": [Reply(tools=[write("b.txt", "b\n")]), Reply(text="Finished!")],
        # The agent needs a command nobody allowed: print mode denies it.
        "PRP-7.1.3": [
            Reply(tools=[bash("npm install left-pad")]),
            Reply(tools=[write("c.txt", "c\n"), *commit("PRP-7.1.3: Phase 1 - Step 1")]),
        ],
    }

    with FakeAnthropic(scripts) as api:
        use(api, monkeypatch, tmp_path / "home")
        code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--json", "--continue-on-error")

    out = capsys.readouterr()
    assert code == 1
    prps = json.loads(out.out)["prps"]
    assert prps["PRP-7.1.1"]["state"] == "failed"
    assert "API error 500" in prps["PRP-7.1.1"]["error"]
    assert "upstream exploded" in prps["PRP-7.1.1"]["error"]
    # Its edit was saved as a WIP commit, but no phase was checkpointed.
    assert prps["PRP-7.1.2"]["state"] in ("failed", "partial")
    assert "no checkpoint commit" in prps["PRP-7.1.2"]["error"]
    assert prps["PRP-7.1.3"]["state"] in ("failed", "partial")
    assert "denied permission: Bash(npm install left-pad)" in prps["PRP-7.1.3"]["error"]
    assert "Merge" not in git(repo, "log", "--format=%s", f"{before}..main")
