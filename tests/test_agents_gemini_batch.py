"""`ce batch-exe --executor gemini` end to end: the real Gemini CLI (pinned, under tests/.tools)
works in each PRP's linked worktree against a scripted local Gemini API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_tools import require_npm_binary
from batchkit import Spec, git, make_batch_repo
from ce.agents.stream import estimate_cost
from ce.cli import run
from fake_gemini import Failure, FakeGemini, Reply, Step, rate_limited, shell, write


def config(binary: Path) -> str:
    return (
        # No stagger: the PRPs' CLIs start at once (the test is about what they do).
        "[monitor]\npoll_seconds = 0.2\nstagger_seconds = 0\n"
        '[executor]\nname = "gemini"\n'
        f"[executor.gemini]\nbinary = {json.dumps(str(binary))}\n"
        'models = { sonnet = "gemini-2.5-pro", haiku = "gemini-2.5-flash" }\n'
    )


def spec(prp_id: str, name: str) -> Spec:
    # The phase's `bash run` block is for the script executor; the agent follows the script.
    return Spec(id=prp_id, title=f"Work {prp_id[-3:]}", phases=[["true"]], files=[name])


def script(prp_id: str, name: str) -> list[Step]:
    return [
        Reply(text="Phase 1.", tools=[write(name, f"{prp_id}\n")]),
        Reply(tools=[shell(f"git add -A && git commit -q -m '{prp_id}: Phase 1 - Step 1'")]),
    ]


def batch(repo: Path, api: FakeGemini, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """`ce batch-exe` on batch 8 in `repo`, the CLI pointed at `api` with a temporary HOME."""
    home = repo.parent / "home"
    api.settings(home)
    for variable, value in api.env(home).items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(repo)
    return run(["batch-exe", "--batch", "8", "--json", *args])


def checkpoint(repo: Path) -> dict[str, Any]:
    data = json.loads((repo / ".ce/tmp/batch-execution-8.json").read_text())
    return {p: r for s in data["stages"].values() for p, r in s["results"].items()}


def test_two_parallel_prps_merge_on_main_with_their_tokens_and_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = require_npm_binary("gemini")
    files = {"PRP-8.1.1": "north.txt", "PRP-8.1.2": "south.txt"}
    specs = [spec(prp, name) for prp, name in files.items()]
    repo = make_batch_repo(tmp_path / "repo", specs, batch="8", config=config(binary))

    with FakeGemini({prp: script(prp, name) for prp, name in files.items()}) as api:
        code = batch(repo, api, monkeypatch, "--model", "haiku")

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
    # Each PRP: three turns (write, commit, the closing text) of 1000 in and 200 out.
    cost = estimate_cost("gemini-2.5-flash", 3000, 600)
    results = checkpoint(repo)
    for prp in files:
        assert (results[prp]["input_tokens"], results[prp]["output_tokens"]) == (3000, 600)
        assert results[prp]["cost_usd"] == cost
        assert results[prp]["session_id"]
        assert summary["prps"][prp]["cost_usd"] == cost
    assert summary["usage"]["input_tokens"] == 6000
    assert {seen.path.split(":")[0] for seen in api.seen} == {"/v1beta/models/gemini-2.5-flash"}
    assert (api.outbound, api.refused) == ([], [])


def test_failures_each_have_their_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = require_npm_binary("gemini")
    specs = [spec("PRP-8.1.1", "a.txt"), spec("PRP-8.1.2", "b.txt"), spec("PRP-8.1.3", "c.txt")]
    repo = make_batch_repo(tmp_path / "repo", specs, batch="8", config=config(binary))
    before = git(repo, "rev-parse", "main")
    scripts: dict[str, list[Step]] = {
        # The API fails on the first request.
        "PRP-8.1.1": [Failure(status=500, message="upstream exploded")],
        # The agent edits, then says it is done without committing anything.
        "PRP-8.1.2": [Reply(tools=[write("b.txt", "b\n")]), Reply(text="Finished!")],
        # The agent needs a command the policy file does not allow: headless mode denies it.
        "PRP-8.1.3": [
            Reply(tools=[shell("npm install left-pad")]),
            Reply(tools=[write("c.txt", "c\n")]),
            Reply(tools=[shell("git add -A && git commit -q -m 'PRP-8.1.3: Phase 1 - Step 1'")]),
        ],
    }

    with FakeGemini(scripts) as api:
        code = batch(repo, api, monkeypatch, "--continue-on-error")

    out = capsys.readouterr()
    assert code == 1, out.err[-3000:]
    prps = json.loads(out.out)["prps"]
    assert prps["PRP-8.1.1"]["state"] == "failed"
    assert prps["PRP-8.1.1"]["error"].startswith("Gemini CLI reported an error: [API Error: ")
    assert "upstream exploded" in prps["PRP-8.1.1"]["error"]
    # Its edit was saved as a WIP commit, but no phase was checkpointed.
    assert prps["PRP-8.1.2"]["state"] in ("failed", "partial")
    assert "no checkpoint commit" in prps["PRP-8.1.2"]["error"]
    assert prps["PRP-8.1.3"]["state"] in ("failed", "partial")
    denied = "1 tool call(s) were denied by policy: run_shell_command(npm install left-pad)"
    assert denied in prps["PRP-8.1.3"]["error"]
    assert "Merge" not in git(repo, "log", "--format=%s", f"{before}..main")
    assert (api.outbound, api.refused) == ([], [])


class RateLimitedOnce(FakeGemini):
    """The first model turn asked of it is refused with 429 (RetryInfo: 1 s); then it plays."""

    limited = False

    def answer(self, path: str, body: dict[str, Any]) -> Step:
        step = super().answer(path, body)
        if self.limited:
            return step
        self.limited = True
        return rate_limited(retry_after=1)


def test_a_rate_limit_holds_the_launches_and_the_prp_then_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 429 fails no PRP: the CLI's suggested delay holds every launch, then it goes on."""
    binary = require_npm_binary("gemini")
    repo = make_batch_repo(
        tmp_path / "repo", [spec("PRP-8.1.1", "a.txt")], batch="8", config=config(binary)
    )

    with RateLimitedOnce({"PRP-8.1.1": script("PRP-8.1.1", "a.txt")}) as api:
        code = batch(repo, api, monkeypatch)

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert json.loads(out.out)["status"] == "COMPLETED"
    assert (repo / "a.txt").read_text() == "PRP-8.1.1\n"
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-8.1.1.log").read_text()
    assert "rate-limited: Gemini CLI reported an error: " in log
    assert "Suggested retry after 1s." in log
    assert "; retry in 1s: no executor launches until " in log
    assert [seen.step for seen in api.requests_for("PRP-8.1.1")] == [0, 0, 1, 2]
