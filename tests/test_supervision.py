"""Supervision with real agents: they hang, fork, commit slowly, talk, overrun or quit early.

Script-executor PRPs whose bash blocks misbehave run through the real engine with thresholds in
seconds. Progress lines go to stderr (`--json`), so the event stream is asserted as printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchkit import GIT_ENV_CONFIG, Spec, git, make_batch_repo, write
from ce import proc
from ce.cli import run
from ce.config import MonitorConfig
from ce.core.events import Event, Health, HealthChanged, Notice
from ce.git import Repo
from ce.run.monitor import Monitor, Watch

CONFIG = """\
executor = "script"
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = 0.2
warning_after = {warning}
stalled_after = {stalled}
grace_seconds = 0.5
retries = {retries}
"""


def config(*, warning: float = 1, stalled: float = 2, retries: int = 1) -> str:
    return CONFIG.format(warning=warning, stalled=stalled, retries=retries)


def run_batch(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any], list[str]]:
    """Exit code, the JSON summary's PRPs, and the progress lines (time stamps cut)."""
    monkeypatch.chdir(repo)
    code = run(["batch-exe", "--batch", "7", "--json", *args])
    out = capsys.readouterr()
    lines = [line.split(" ", 1)[1] for line in out.err.splitlines() if " " in line]
    return code, json.loads(out.out)["prps"], lines


def log_of(repo: Path, prp_id: str) -> str:
    return (repo / ".ce" / "tmp" / "logs" / f"{prp_id}.log").read_text()


def group_members(pgid: int) -> list[str]:
    """Every process of group `pgid` still in the process table, zombies included."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append(f"{stat.parent.name} {fields[0]} {text[: text.rfind(')') + 1]}")
    return members


def read_ints(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()]


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_a_hung_agent_is_stopped_with_its_group_retried_then_failed_while_another_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "facts"
    facts.mkdir()
    # Records its group and stdin, double-forks a sleep that ignores SIGTERM (so only the
    # SIGKILL after the grace period ends it), then hangs without output or commits.
    hang = f"""
        echo "hanging: stdin is $(readlink /proc/$$/fd/0)"
        cut -d' ' -f5 /proc/$$/stat >> {facts}/groups
        bash -c 'trap "" TERM; sleep 300 & echo $! >> {facts}/orphans'
        trap "" TERM
        sleep 300
    """
    specs = [
        Spec(id="PRP-7.1.1", title="Hang", phases=[[hang]], files=["h.txt"]),
        Spec(id="PRP-7.1.2", title="Fine", phases=[[write("f.txt", "f")]], files=["f.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(retries=2))

    code, prps, lines = run_batch(repo, monkeypatch, capsys)

    assert code == 1
    assert prps["PRP-7.1.2"]["state"] == "merged"
    assert (repo / "f.txt").read_text() == "f\n"
    assert prps["PRP-7.1.1"]["state"] == "failed"
    assert prps["PRP-7.1.1"]["error"] == "stalled 2s after phase 0/1"
    groups, orphans = read_ints(facts / "groups"), read_ints(facts / "orphans")
    assert len(set(groups)) == len(orphans) == 3  # the first attempt and two retries
    assert os.getpgid(0) not in groups
    for pgid in groups:
        assert group_members(pgid) == [], f"group {pgid} outlived its agent"
    hung = [line for line in lines if line.startswith("PRP-7.1.1: ")]
    health = [line.split(" (")[0] for line in hung if line.endswith("s)")]
    assert health == ["PRP-7.1.1: WARNING", "PRP-7.1.1: STALLED"] * 3
    stopping = [
        f"warning: PRP-7.1.1: stalled 2s: stopping process group {pgid} " for pgid in groups
    ]
    for prefix in stopping:
        assert any(line.startswith(prefix) for line in lines), prefix
    assert "warning: PRP-7.1.1: stalled 2s; relaunching from phase 1 (attempt 3 of 3)" in lines
    assert hung[-1] == "PRP-7.1.1: failed: stalled 2s after phase 0/1"
    log = log_of(repo, "PRP-7.1.1")
    assert log.count("hanging: stdin is /dev/null") == 3
    assert re.search(r"\[ce\] \S+ STALLED: no progress for 2s\n", log)
    assert "stalled 2s; relaunching from phase 1 (attempt 2 of 3)" in log
    assert log.rstrip().endswith("stalled 2s; not relaunched (attempts: 3)")


def test_agents_that_commit_or_talk_stay_healthy_past_the_stall_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Silent in the log: only its commits show progress.
    commits = (
        "for i in $(seq 12); do sleep 0.3; echo $i >> c.txt; git add c.txt; "
        'git commit -q -m "PRP-7.1.1: Phase 1 - Step 1"; done'
    )
    # No commit until the phase ends: only its output shows progress.
    talks = 'for i in $(seq 12); do echo "working $i"; sleep 0.3; done; echo t > t.txt'
    specs = [
        Spec(id="PRP-7.1.1", title="Commits", phases=[[commits]], files=["c.txt"]),
        Spec(id="PRP-7.1.2", title="Talks", phases=[[talks]], files=["t.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(warning=1.5, stalled=2.5))

    started = time.monotonic()
    code, prps, lines = run_batch(repo, monkeypatch, capsys)

    assert code == 0, lines
    assert time.monotonic() - started > 3.6  # each agent worked past the stall threshold
    assert [prps[p]["state"] for p in ("PRP-7.1.1", "PRP-7.1.2")] == ["merged", "merged"]
    assert not [line for line in lines if "WARNING" in line or "STALLED" in line]
    for prp_id in ("PRP-7.1.1", "PRP-7.1.2"):
        assert "[ce] attempt 2" not in log_of(repo, prp_id)


def test_the_timeout_stops_a_busy_agent_and_bounds_the_retries_of_a_hung_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "facts"
    facts.mkdir()
    busy = f"""
        cut -d' ' -f5 /proc/$$/stat >> {facts}/groups
        while true; do echo busy; sleep 0.2; done
    """
    specs = [
        Spec(id="PRP-7.1.1", title="Busy", phases=[[write("b.txt", "b")], [busy]], files=["b.txt"]),
        Spec(id="PRP-7.1.2", title="Hang", phases=[["sleep 300"]], files=["h.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(retries=5))

    code, prps, lines = run_batch(repo, monkeypatch, capsys, "--timeout", "0.05")

    assert code == 1
    busy_prp, hung_prp = prps["PRP-7.1.1"], prps["PRP-7.1.2"]
    assert busy_prp["state"] == "partial"
    assert busy_prp["error"] == "timed out after 3s"
    assert busy_prp["phases_completed"] == ["phase_1"]
    assert "warning: PRP-7.1.1: timed out after 3s: stopping process group" in "\n".join(lines)
    assert not [line for line in lines if line.startswith("PRP-7.1.1: STALLED")]
    (pgid,) = read_ints(facts / "groups")  # a timeout is not retried
    assert group_members(pgid) == []
    # --timeout is the PRP's whole time: the relaunch after a stall does not get a new one.
    assert hung_prp["state"] == "failed"
    assert hung_prp["error"] == "timed out after 3s"
    assert "[ce] attempt 2" in log_of(repo, "PRP-7.1.2")
    assert "[ce] attempt 3" not in log_of(repo, "PRP-7.1.2")


def test_an_agent_that_exits_without_a_commit_or_with_an_error_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = (
        '[executor]\nname = "command"\n[executor.command]\n'
        "run = \"bash -c 'echo looked around; [ $CE_PRP_ID = PRP-7.1.1 ] || exit 3'\"\n"
    )
    specs = [
        Spec(id="PRP-7.1.1", title="Idle", phases=[[":"]], files=["i.txt"]),
        Spec(id="PRP-7.1.2", title="Crash", phases=[[":"]], files=["c.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=command)

    code, prps, _ = run_batch(repo, monkeypatch, capsys)

    assert code == 1
    assert prps["PRP-7.1.1"]["state"] == "failed"
    assert prps["PRP-7.1.1"]["error"] == "the executor made no commit"
    assert prps["PRP-7.1.2"]["state"] == "failed"
    assert prps["PRP-7.1.2"]["error"].startswith("the executor exited with code 3 (see ")
    for prp_id in ("PRP-7.1.1", "PRP-7.1.2"):  # neither is retried: only stalls are
        assert log_of(repo, prp_id).splitlines().count("looked around") == 1


def test_an_agent_that_committed_every_phase_then_hangs_is_stopped_and_its_branch_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Commits both phases with ce's checkpoint subjects, then hangs (SIGTERM ignored).
    agent = tmp_path / "agent.sh"
    agent.write_text(
        "for n in 1 2; do echo $n >> done.txt; git add done.txt\n"
        '  git commit -q -m "$CE_PRP_ID: Phase $n - Step $n"; done\n'
        'echo "all committed"; trap "" TERM; sleep 300\n'
    )
    command = (
        config(retries=2)
        .replace('executor = "script"\n', "")
        .replace(
            "[validate]",
            f'[executor]\nname = "command"\n[executor.command]\nrun = "bash {agent}"\n[validate]',
        )
    )
    # [notify] on the stall and the end: a real command, one JSON line per event.
    (tmp_path / "notified.py").write_text(
        "import json, sys; open(sys.argv[1], 'a').write(json.dumps(json.load(sys.stdin)) + '\\n')"
    )
    sent = tmp_path / "sent.jsonl"
    recorder = f"{sys.executable} {tmp_path / 'notified.py'} {sent}"
    command += f'[notify]\ncommand = "{recorder}"\non = ["stalled", "finished"]\n'
    specs = [
        Spec(id="PRP-7.1.1", title="Hangs", phases=[[":"], [":"]], files=["done.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=command)

    code, prps, lines = run_batch(repo, monkeypatch, capsys)

    assert code == 0, lines
    assert prps["PRP-7.1.1"]["state"] == "merged"
    assert (repo / "done.txt").read_text() == "1\n2\n"
    log = log_of(repo, "PRP-7.1.1")
    assert log.count("all committed") == 1  # stopped once, never relaunched
    assert "stalled 2s after its last phase: judged complete" in log
    events = [json.loads(line) for line in sent.read_text().splitlines()]
    assert sorted(e["event"] for e in events) == ["finished", "stalled"]
    assert all(e["prps"][0]["id"] == "PRP-7.1.1" for e in events)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_git_call_per_poll_for_all_branches_and_ages_from_what_ce_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_git = shutil.which("git")
    assert real_git is not None
    calls = tmp_path / "git-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec {real_git} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    repo = make_batch_repo(tmp_path / "repo", [], config="")
    branches = [f"prp-{n}" for n in range(5)]
    for branch in branches:
        git(repo, "branch", branch)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    events: list[Event] = []
    moved: list[str] = []
    clock = Clock()
    settings = MonitorConfig(poll_seconds=60, warning_after=300, stalled_after=600)
    monitor = Monitor(Repo(repo), settings, events.append, lambda p, _: moved.append(p), clock)
    children = [spawn_sleeper(tmp_path / f"{branch}.log") for branch in branches]
    for branch, child in zip(branches, children, strict=True):
        monitor.watch(watch_for(branch, child, clock.now))
    assert calls.read_text().split() == ["for-each-ref"] * 5  # each launch reads its baseline
    calls.unlink()

    for minute in range(1, 11):
        clock.now += 60
        if minute == 4:
            commit_in_1970(repo, "prp-1", real_git)  # progress, whatever its date says
            (tmp_path / "prp-3.log").write_text("thinking\n")  # output is progress too
        monitor.tick()

    assert calls.read_text().split() == ["for-each-ref"] * 10  # one per poll, for all five
    assert monitor.polls == 10
    assert moved == ["prp-1"]
    health = {e.prp: e.health for e in events if isinstance(e, HealthChanged)}
    assert health == {
        "prp-0": Health.STALLED,
        "prp-1": Health.WARNING,
        "prp-2": Health.STALLED,
        "prp-3": Health.WARNING,
        "prp-4": Health.STALLED,
    }
    stopped = [e.prp for e in events if isinstance(e, Notice)]
    assert stopped == ["prp-0", "prp-2", "prp-4"]
    for branch, child in zip(branches, children, strict=True):
        if branch in stopped:
            assert child.wait(10) is not None
        else:
            assert child.poll() is None
            proc.stop_group(child, 0)
    assert "STALLED: no progress for 10m 00s\n" in (tmp_path / "prp-0.log").read_text()


def spawn_sleeper(log: Path) -> proc.Child:
    return proc.spawn_group(["sleep", "60"], cwd=log.parent, env=dict(os.environ), log_path=log)


def watch_for(branch: str, child: proc.Child, now: float) -> Watch:
    return Watch(
        prp_id=branch,
        ref=f"refs/heads/{branch}",
        child=child,
        log_path=child.log_path,
        deadline=now + 3600,
        timeout_minutes=60,
        last_progress=now,
    )


def commit_in_1970(repo: Path, branch: str, real_git: str) -> None:
    """A commit on `branch` made past the counting wrapper."""
    env = {**os.environ, "GIT_COMMITTER_DATE": "1970-01-02T00:00:00Z"}
    head = [real_git, *GIT_ENV_CONFIG]
    tree = f"{branch}^{{tree}}"
    made = subprocess.run(
        [*head, "commit-tree", "-m", "wip", "-p", branch, tree],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(
        [*head, "update-ref", f"refs/heads/{branch}", made.stdout.strip()], cwd=repo, check=True
    )
