"""The engine with the real Claude Code CLI (pinned, under tests/.tools) against a scripted local
Messages API: a stalled agent is resumed in its session with a nudge; its cost reaches the
checkpoint; `--max-budget-usd` reaches the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent_tools import require_npm_binary
from batchkit import Spec, make_batch_repo
from ce.cli import run
from clikit import CHILD_ENV
from fake_anthropic import FakeAnthropic, Reply, Step, commit, write
from fake_api import Http

PRP = "PRP-7.1.1"


class QuietOnce(FakeAnthropic):
    """Never answers the first request of one conversation at one step: the CLI waits in
    silence, as an agent stuck on a slow or lost API call does."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], *, marker: str, step: int) -> None:
        super().__init__(scripts)
        self.quiet_at = (marker, step)
        self.released = threading.Event()
        self.held = 0

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        if path.startswith("/v1/messages") and "count_tokens" not in path and self._first(body):
            self.released.wait(60)  # the CLI is stopped meanwhile: nobody to answer
            return
        super().handle(http, path, body)

    def _first(self, body: dict[str, Any]) -> bool:
        marker = next((m for m in self.scripts if m in self.prompt(body)), None)
        if (marker, self.step_of(body)) != self.quiet_at or self.held:
            return False
        self.held += 1
        return True


def config(binary: Path) -> str:
    # Stalled after 10 s of silence: long enough for the resumed CLI (node) to start and answer
    # on a loaded machine, short enough that the test waits for one stall only that long.
    return (
        "[monitor]\npoll_seconds = 0.2\nwarning_after = 5\nstalled_after = 10\nretries = 0\n"
        "grace_seconds = 1\nstagger_seconds = 0\n"
        '[executor]\nname = "claude"\n'
        f"[executor.claude]\nbinary = {json.dumps(str(binary))}\n"
    )


def test_a_stalled_claude_is_nudged_in_its_session_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = require_npm_binary("claude")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    spec = Spec(id=PRP, title="Two", phases=[["true"], ["true"]], files=["one.txt", "two.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=config(binary))
    script: list[Step] = [
        Reply(tools=[write("one.txt", "1\n")]),
        Reply(tools=commit(f"{PRP}: Phase 1 - Step 1")),
        Reply(tools=[write("two.txt", "2\n")]),  # first asked for: no answer, the CLI stalls
        # The resumed session may count one more turn (the CLI records the interrupted one):
        # writing the same file twice does no harm.
        Reply(tools=[write("two.txt", "2\n")]),
        Reply(tools=commit(f"{PRP}: Phase 2 - Step 2")),
    ]

    api = QuietOnce({PRP: script}, marker=PRP, step=2)
    with api:
        for name, value in api.env(home).items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(repo)
        try:
            code = run(["batch-exe", "--batch", "7", "--json", "--max-budget-usd", "3"])
        finally:
            api.released.set()

    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    prp = json.loads(out.out)["prps"][PRP]
    assert prp["state"] == "merged"
    assert (repo / "two.txt").read_text() == "2\n"
    log = (repo / f".ce/tmp/logs/{PRP}.log").read_text()
    assert "resuming its session with a nudge (phase 2 next)" in log
    session = (repo / f".ce/tmp/run/{PRP}/claude-session-id").read_text().strip()
    assert f"--resume {session} -- " in log
    assert prp["session_id"] == session
    assert "--max-budget-usd 3 " in log
    nudged = [seen for seen in api.requests_for(PRP) if "stopped making progress" in seen.text]
    assert nudged, "the nudge never reached the API"
    assert f"{PRP}: Phase 1 - Step 1" in nudged[0].text  # the session's earlier turns, resumed
    # A stopped CLI prints no result event: the usage is the nudged launch's.
    assert isinstance(prp["cost_usd"], float) and prp["cost_usd"] > 0
    assert prp["input_tokens"] > 0 and prp["output_tokens"] > 0


def test_what_an_agent_spent_before_ctrl_c_is_in_its_record(tmp_path: Path) -> None:
    binary = require_npm_binary("claude")
    home = tmp_path / "home"
    home.mkdir()
    spec = Spec(id=PRP, title="Two", phases=[["true"], ["true"]], files=["one.txt", "two.txt"])
    quiet = config(binary).replace("stalled_after = 10", "stalled_after = 600")
    repo = make_batch_repo(tmp_path / "repo", [spec], config=quiet)
    script: list[Step] = [
        Reply(tools=[write("one.txt", "1\n")]),
        Reply(tools=commit(f"{PRP}: Phase 1 - Step 1")),
        Reply(tools=[write("two.txt", "2\n")]),  # no answer: Ctrl-C comes meanwhile
    ]

    api = QuietOnce({PRP: script}, marker=PRP, step=2)
    with api:
        child = subprocess.Popen(
            [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
            cwd=repo,
            env=CHILD_ENV | api.env(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not api.held:
                assert child.poll() is None, child.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the agent never reached its third turn"
                time.sleep(0.1)
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=60) == 130
        finally:
            api.released.set()
            if child.poll() is None:
                child.kill()
            child.communicate()

    saved = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    assert saved["status"] == "INTERRUPTED"
    record = saved["stages"]["1"]["results"][PRP]
    assert record["phases_completed"] == ["phase_1"]
    # No result event from a stopped CLI: its answered messages' tokens, at list price.
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0
    assert isinstance(record["cost_usd"], float) and record["cost_usd"] > 0
