"""The engine's side of agents: cost and budgets, rate limits, staggered launches, the nudge.

A small fake agent, registered only here, stands in for a CLI: the script executor does the
PRP's work (real processes, real commits) and the lines the PRP's blocks print as
`fake-agent key=value ...` are the agent's own report: what it spent, its session, or that it
was rate-limited. The nudge resumes "the session" with FAKE_NUDGE set in the environment.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchkit import Spec, make_batch_repo, write
from ce.agents.base import Assessment, ExecutorJob
from ce.agents.script import ScriptExecutor
from ce.cli import run
from ce.cli.batch import run_context
from ce.config import Config
from ce.run.gate import AGENT_STAGGER_SECONDS, LaunchGate, stagger_seconds
from ce.run.load import Overrides, RunOptions, load
from ce.run.state import Journal

_REPORT = re.compile(r"^fake-agent (.*)$", re.MULTILINE)


class FakeAgent:
    """An agent executor for tests: `Executor` and `Resumable`."""

    name = "fake"

    def __init__(self) -> None:
        self.script = ScriptExecutor()

    def preflight(self, repo_root: Path) -> None:
        """Nothing to check."""

    def command(self, job: ExecutorJob) -> list[str]:
        return self.script.command(job)

    def nudge_command(self, job: ExecutorJob, session_id: str) -> list[str] | None:
        return ["env", f"FAKE_NUDGE={session_id}", *self.script.command(job)]

    def assess(self, job: ExecutorJob, exit_code: int, output: str) -> Assessment:
        report: dict[str, str] = {}
        cost, inputs, outputs = 0.0, 0, 0
        for line in _REPORT.findall(output):
            fields = dict(pair.split("=", 1) for pair in line.split())
            cost += float(fields.pop("cost", 0))
            inputs += int(fields.pop("in", 0))
            outputs += int(fields.pop("out", 0))
            report.update(fields)
        usage = Assessment(
            cost_usd=cost or None,
            input_tokens=inputs or None,
            output_tokens=outputs or None,
            session_id=report.get("session"),
        )
        if "retry_after" in report:
            wait = float(report["retry_after"])
            return replace(usage, error=f"rate-limited; retry in {wait:.0f}s", retry_after=wait)
        return usage


def config(**monitor: float) -> str:
    settings = {"poll_seconds": 0.2, **monitor}
    return 'executor = "script"\n[monitor]\n' + "".join(f"{k} = {v}\n" for k, v in settings.items())


def spent(cost: float, tokens_in: int, tokens_out: int, session: str = "") -> str:
    named = f" session={session}" if session else ""
    return f"echo 'fake-agent cost={cost} in={tokens_in} out={tokens_out}{named}'"


def run_fake(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **options: Any,
) -> tuple[int, dict[str, Any], str]:
    """`ce batch-exe --batch 7 --json` with the fake agent as the executor."""
    monkeypatch.chdir(repo)
    resume = bool(options.pop("resume", False))
    chosen = RunOptions(batch="7", resume=resume, overrides=Overrides(**options))
    context = replace(load(chosen, repo), executor=FakeAgent())
    code = run_context(context, as_json=True, quiet=False)
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def checkpoint(repo: Path) -> dict[str, Any]:
    data = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    return {p: r for s in data["stages"].values() for p, r in s["results"].items()}


def journal(repo: Path, kind: str) -> list[dict[str, Any]]:
    entries = Journal.read(repo / ".ce/tmp/batch-7.journal.jsonl")
    return [e for e in entries if kind in (e.get("intent"), e.get("fact"))]


def chain(count: int, blocks: Sequence[Sequence[str]]) -> list[Spec]:
    """PRP-7.1.1 ... PRP-7.N.1, each depending on the one before: one launch at a time."""
    return [
        Spec(
            id=f"PRP-7.{n}.1",
            title=f"Step {n}",
            phases=[[write(f"f{n}.txt", str(n)), *blocks[n - 1]]],
            files=[f"f{n}.txt"],
            deps=[f"PRP-7.{n - 1}.1"] if n > 1 else [],
        )
        for n in range(1, count + 1)
    ]


def test_cost_and_tokens_are_summed_into_checkpoint_summary_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(
            id="PRP-7.1.1",
            title="Two phases",
            phases=[
                [write("a.txt", "a"), spent(0.25, 1000, 100, "s-a1")],
                [write("b.txt", "b"), spent(0.5, 3000, 200, "s-a2")],
            ],
            files=["a.txt", "b.txt"],
        ),
        Spec(
            id="PRP-7.1.2",
            title="One phase",
            phases=[[write("c.txt", "c"), spent(0.125, 500, 50)]],
            files=["c.txt"],
        ),
        Spec(id="PRP-7.1.3", title="Silent", phases=[[write("d.txt", "d")]], files=["d.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config())

    code, summary, err = run_fake(repo, monkeypatch, capsys)

    assert code == 0, err
    results = checkpoint(repo)
    assert results["PRP-7.1.1"]["cost_usd"] == 0.75
    assert results["PRP-7.1.1"]["input_tokens"] == 4000
    assert results["PRP-7.1.1"]["output_tokens"] == 300
    assert results["PRP-7.1.1"]["session_id"] == "s-a2"
    assert results["PRP-7.1.2"]["cost_usd"] == 0.125
    assert results["PRP-7.1.2"]["session_id"] is None
    assert results["PRP-7.1.3"]["cost_usd"] is None  # nothing reported is not $0
    assert summary["usage"] == {"cost_usd": 0.875, "input_tokens": 4500, "output_tokens": 350}
    assert summary["prps"]["PRP-7.1.1"]["cost_usd"] == 0.75
    report = json.loads((repo / ".ce/tmp/batch-7-report.json").read_text())
    assert report["usage"]["cost_usd"] == 0.875
    html = (repo / ".ce/tmp/batch-7-report.html").read_text()
    assert "$0.88" in html  # the batch's card
    assert "$0.75" in html
    assert "4,000 in, 300 out" in html


def test_the_batch_budget_stops_new_prps_and_a_higher_one_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = chain(3, [[spent(1.0, 10, 1)], [spent(1.0, 10, 1)], [spent(0.5, 10, 1)]])
    repo = make_batch_repo(tmp_path / "repo", specs, config=config())

    code, summary, err = run_fake(repo, monkeypatch, capsys, batch_budget_usd=1.5)

    assert code == 1
    assert summary["status"] == "FAILED"
    states = {p: r["state"] for p, r in summary["prps"].items()}
    # 7.1.1 spent $1 (under budget), so 7.2.1 started; after it, $2: 7.3.1 never started.
    assert states == {"PRP-7.1.1": "merged", "PRP-7.2.1": "merged", "PRP-7.3.1": "pending"}
    assert "error: batch budget $1.50 reached ($2.00 spent): no new PRP starts" in err
    reason = summary["budget_reason"]
    assert reason.startswith("The batch budget of $1.50 is spent ($2.00 reported")
    assert "`ce batch-exe --batch 7 --resume --batch-budget-usd N`" in reason
    assert reason in summary["next_steps"]
    assert [e["prp"] for e in journal(repo, "launch")] == ["PRP-7.1.1", "PRP-7.2.1"]

    code, summary, err = run_fake(repo, monkeypatch, capsys, resume=True, batch_budget_usd=5)

    assert code == 0, err
    assert summary["status"] == "COMPLETED"
    assert summary["budget_reason"] is None
    assert summary["usage"]["cost_usd"] == 2.5  # the first run's spending is remembered
    assert (repo / "f3.txt").read_text() == "3\n"


def test_a_rate_limit_holds_every_launch_then_the_prp_goes_on_without_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "limited-once"
    # 7.1.2 launches with it; 7.1.3 is ready (7.1.2 done, a slot free) well before the reset.
    limited = f"""
        if [ ! -e {marker} ]; then
            touch {marker}; sleep 0.3; echo 'fake-agent retry_after=3'; exit 1
        fi
    """
    specs = [
        Spec(
            id="PRP-7.1.1",
            title="Limited",
            phases=[[limited, write("a.txt", "a")]],
            files=["a.txt"],
        ),
        Spec(
            id="PRP-7.1.2",
            title="Quick",
            phases=[["sleep 1", write("b.txt", "b")]],
            files=["b.txt"],
        ),
        Spec(id="PRP-7.1.3", title="Later", phases=[[write("c.txt", "c")]], files=["c.txt"]),
    ]
    # No retries at all: a rate-limited launch is not one.
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(retries=0))

    code, summary, err = run_fake(repo, monkeypatch, capsys, max_parallel=2)

    assert code == 0, err
    assert all(p["state"] == "merged" and p["error"] is None for p in summary["prps"].values())
    reset = next(e["t"] for e in journal(repo, "exited") if e["prp"] == "PRP-7.1.1") + 3
    launches = [(e["prp"], e["t"]) for e in journal(repo, "launch")]
    assert sorted(p for p, _ in launches[:2]) == ["PRP-7.1.1", "PRP-7.1.2"]
    assert sorted(p for p, _ in launches[2:]) == ["PRP-7.1.1", "PRP-7.1.3"]
    assert min(t for _, t in launches[2:]) >= reset - 0.05
    ready = [e["t"] for e in journal(repo, "worktree") if e["prp"] == "PRP-7.1.3" and "fact" in e]
    assert ready[0] < reset - 0.5  # and it waited
    notice = "warning: PRP-7.1.1: rate-limited; retry in 3s: no executor launches until "
    assert notice in err
    log = (repo / ".ce/tmp/logs/PRP-7.1.1.log").read_text()
    assert "then it goes on from phase 1" in log
    # Launched twice, one attempt: the launch after the reset is the same attempt again.
    assert log.count("[ce] attempt 1:") == 2
    assert "[ce] attempt 2:" not in log
    assert checkpoint(repo)["PRP-7.1.1"]["attempts"] == 1


def test_launches_are_staggered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(
            id=f"PRP-7.1.{n}", title=f"P{n}", phases=[[write(f"{n}.txt", "x")]], files=[f"{n}.txt"]
        )
        for n in (1, 2, 3)
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(stagger_seconds=0.8))

    code, _, err = run_fake(repo, monkeypatch, capsys)

    assert code == 0, err
    times = sorted(e["t"] for e in journal(repo, "launch"))
    assert len(times) == 3
    # The journal's clock is not the gate's: a little slack.
    assert all(later - earlier >= 0.7 for earlier, later in itertools.pairwise(times))


@pytest.mark.parametrize("stalls", [1, 2])
def test_a_stalled_agent_is_nudged_in_its_session_then_relaunched_fresh(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stalls: int,
) -> None:
    """One stall: the nudge finishes the work. Two: the nudge stalled too, a fresh launch."""
    counter, launches = tmp_path / "count", tmp_path / "launches"
    block = f"""
        n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}
        echo "launch $n nudge=${{FAKE_NUDGE:-}}" >> {launches}
        echo "fake-agent session=s-$n cost=0.1 in=100 out=10"
        if [ "$n" -lt {stalls} ]; then sleep 60; fi
    """
    specs = [
        Spec(id="PRP-7.1.1", title="Slow", phases=[[block, write("a.txt", "a")]], files=["a.txt"])
    ]
    repo = make_batch_repo(
        tmp_path / "repo",
        specs,
        config=config(warning_after=0.5, stalled_after=1.2, retries=1, grace_seconds=0.5),
    )

    code, summary, err = run_fake(repo, monkeypatch, capsys)

    assert code == 0, err
    expected = ["launch 0 nudge=", "launch 1 nudge=s-0", "launch 2 nudge="][: stalls + 1]
    assert launches.read_text().splitlines() == expected
    prp = summary["prps"]["PRP-7.1.1"]
    assert prp["state"] == "merged"
    assert prp["cost_usd"] == pytest.approx(0.1 * (stalls + 1))  # stalled launches cost too
    assert prp["session_id"] == f"s-{stalls}"
    assert prp["attempts"] == stalls + 1  # the nudge is a launch like any other
    log = (repo / ".ce/tmp/logs/PRP-7.1.1.log").read_text()
    assert "stalled 1s; resuming its session with a nudge (phase 1 next)" in log
    assert ("relaunching from phase 1 (attempt 2 of 2)" in log) == (stalls == 2)
    assert "FAKE_NUDGE=s-0" in log  # the nudge's argv, in the log like any launch


def test_the_per_prp_budget_needs_an_agent_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", chain(1, [[]]), config=config())
    monkeypatch.chdir(repo)

    code = run(["batch-exe", "--batch", "7", "--max-budget-usd", "2"])

    assert code == 2
    assert "--max-budget-usd needs an agent executor" in capsys.readouterr().err


def test_the_per_prp_budget_goes_to_the_chosen_preset() -> None:
    from ce.run.load import with_prp_budget

    config = with_prp_budget(Config(executor="codex"), 2.5)

    assert config.executor_tables.codex.max_budget_usd == 2.5
    assert config.executor_tables.claude.max_budget_usd is None


def test_stagger_defaults() -> None:
    assert stagger_seconds(Config(executor="script")) == 0
    assert stagger_seconds(Config(executor="command")) == 0
    assert stagger_seconds(Config(executor="claude")) == AGENT_STAGGER_SECONDS
    configured = Config.model_validate({"executor": "claude", "monitor": {"stagger_seconds": 0}})
    assert stagger_seconds(configured) == 0


def test_the_gate_holds_and_a_closed_gate_lets_waiters_go() -> None:
    gate = LaunchGate(0.0)
    assert gate.wait_turn() < 0.05
    gate.hold(0.3)
    assert 0.2 < gate.held_for() <= 0.3
    assert 0.25 < gate.wait_turn() < 1.0

    gate.hold(60)
    waited: list[float] = []
    waiter = threading.Thread(target=lambda: waited.append(gate.wait_turn()))
    waiter.start()
    time.sleep(0.1)
    gate.close()
    waiter.join(timeout=5)
    assert waited and waited[0] < 5
