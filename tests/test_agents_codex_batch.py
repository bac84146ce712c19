"""`ce batch-exe --executor codex` end to end: the real Codex CLI (pinned, under tests/.tools)
commits from each PRP's linked worktree against a scripted local Responses API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_tools import require_npm_binary
from batchkit import Spec, git, make_batch_repo
from ce.cli import run
from fake_openai import FakeOpenAI, Reply, Step, shell


def config(binary: Path) -> str:
    return (
        "[monitor]\npoll_seconds = 0.2\n"
        '[executor]\nname = "codex"\n'
        f"[executor.codex]\nbinary = {json.dumps(str(binary))}\n"
        'models = { sonnet = "gpt-5", haiku = "gpt-5-mini", opus = "gpt-5" }\n'
    )


def script(prp_id: str, name: str) -> list[Step]:
    return [
        Reply(text="Phase 1.", tools=[shell(f"echo {prp_id} > {name}")]),
        Reply(tools=[shell(f"git add -A && git commit -q -m '{prp_id}: Phase 1 - Step 1'")]),
    ]


def test_two_parallel_prps_merge_on_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = require_npm_binary("codex")
    files = {"PRP-8.1.1": "north.txt", "PRP-8.1.2": "south.txt"}
    specs = [
        Spec(id=prp, title=f"Work {prp[-3:]}", phases=[["true"]], files=[name])
        for prp, name in files.items()
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, batch="8", config=config(binary))
    home = tmp_path / "home"

    with FakeOpenAI({prp: script(prp, name) for prp, name in files.items()}) as api:
        api.codex_config(home)
        for variable, value in api.env(home).items():
            monkeypatch.setenv(variable, value)
        monkeypatch.chdir(repo)
        code = run(["batch-exe", "--batch", "8", "--json"])

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    summary = json.loads(out.out)
    assert summary["status"] == "COMPLETED"
    merges = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert sorted(s for s in merges if s.startswith("Merge ")) == [
        "Merge PRP-8.1.1: Work 1.1",
        "Merge PRP-8.1.2: Work 1.2",
    ]
    for prp, name in files.items():
        assert (repo / name).read_text() == f"{prp}\n"


def test_a_codex_agent_committing_on_your_main_is_refused_and_its_prp_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sandbox leaves the shared git dir writable for the agent's own commits; the fence
    (`ce.git.fence`) refuses its `git -C <your checkout> commit` and `update-ref` of main."""
    binary = require_npm_binary("codex")
    spec = Spec(id="PRP-8.1.1", title="Rogue", phases=[["true"]], files=["r.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], batch="8", config=config(binary))
    main = git(repo, "rev-parse", "main")
    steps = [
        *script("PRP-8.1.1", "r.txt"),
        Reply(tools=[shell(f"git -C {repo} commit -q --allow-empty -m 'on your main'")]),
        Reply(tools=[shell("git update-ref refs/heads/main HEAD")]),
    ]
    home = tmp_path / "home"

    with FakeOpenAI({"PRP-8.1.1": steps}) as api:
        api.codex_config(home)
        for variable, value in api.env(home).items():
            monkeypatch.setenv(variable, value)
        monkeypatch.chdir(repo)
        code = run(["batch-exe", "--batch", "8", "--json"])

    out = capsys.readouterr()
    assert code == 1, out.err[-3000:]
    prp = json.loads(out.out)["prps"]["PRP-8.1.1"]
    assert prp["state"] == "failed"
    assert prp["error"].startswith("the executor tried to update refs/heads/main (refused: ")
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-8.1.1.log").read_text()
    assert log.count("ce: refused to update refs/heads/main") == 2  # the commit, the update-ref
    # main holds only what ce put there itself (its .gitignore entry)
    assert git(repo, "log", "--format=%s", f"{main}..main") == "ce: ignore .ce/tmp/"
