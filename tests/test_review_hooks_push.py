"""Auto-review after each stage, post-stage/post-batch hooks, and --push to a real remote."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce.cli import run

TWO_STAGES = [
    Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
    Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[[write("b.txt", "b")]],
        files=["b.txt"],
    ),
]
BASE = 'executor = "script"\n[monitor]\npoll_seconds = 0.2\n'


def ce(repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(repo)
    return run(["batch-exe", "--batch", "7", "--json", *args])


def test_failed_review_pauses_then_resume_reviews_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The stage review runs a check no single PRP is held to: a.txt must say "A".
    config = BASE + "[validate]\nreview = \"bash -c 'test ! -f a.txt || grep -qx A a.txt'\"\n"
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES, config=config)

    assert ce(repo, monkeypatch) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "PAUSED"
    assert "review of stage 1 FAILED" in summary["pause_reason"]
    # Nothing after the failed review merges (in eager mode stage 2 may have started).
    assert summary["prps"]["PRP-7.2.1"]["state"] in ("pending", "validated")
    review = json.loads((repo / ".ce/tmp/batch-7-review-stage-1.json").read_text())
    assert review["status"] == "FAILED"

    (repo / "a.txt").write_text("A\n")  # the user acts on main
    git(repo, "commit", "-q", "-am", "fix a.txt")
    assert ce(repo, monkeypatch, "--resume") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "COMPLETED"
    assert [r["status"] for r in summary["reviews"]] == ["PASSED", "PASSED"]
    assert (repo / "b.txt").read_text() == "b\n"


def test_no_auto_review_skips_the_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = BASE + "[validate]\nreview = \"bash -c 'exit 1'\"\n"
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES, config=config)
    assert ce(repo, monkeypatch, "--no-auto-review") == 0
    assert json.loads(capsys.readouterr().out)["reviews"] == []


def test_hooks_run_after_each_stage_and_the_batch_and_never_fail_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "hooks.txt"
    config = BASE + (
        "[hooks]\n"
        f"post_stage = \"bash -c 'echo stage $CE_STAGE >> {record}'\"\n"
        "post_batch = \"bash -c 'echo failing; exit 3'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES, config=config)
    assert ce(repo, monkeypatch) == 0
    summary = json.loads(capsys.readouterr().out)
    assert record.read_text() == "stage 1\nstage 2\n"
    assert [(h["hook"], h["exit_code"]) for h in summary["hooks"]] == [
        ("post_stage", 0),
        ("post_stage", 0),
        ("post_batch", 3),
    ]
    assert "failing" in (repo / ".ce/tmp/logs/hooks.log").read_text()


def test_a_hook_that_hangs_is_stopped_with_its_group_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[hooks] timeout_minutes`: a hung hook (and what it started) is stopped at the limit,
    reported, and the batch goes on as after any failed hook."""
    marker = tmp_path / "hung"
    config = BASE + (
        "[hooks]\n"
        "timeout_minutes = 0.02\n"
        f"post_stage = \"bash -c 'sleep 1000 & touch {marker}; wait'\"\n"
        f"post_batch = \"bash -c 'echo batch done'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES[:1], config=config)
    started = time.monotonic()
    assert ce(repo, monkeypatch) == 0
    assert time.monotonic() - started < 100  # not the 1000 s the hook would take
    summary = json.loads(capsys.readouterr().out)
    assert [(h["hook"], h["timed_out"]) for h in summary["hooks"]] == [
        ("post_stage", True),
        ("post_batch", False),
    ]
    assert summary["hooks"][0]["exit_code"] != 0
    assert marker.exists()
    assert not [p for p in Path("/proc").glob("[0-9]*") if _runs(p, "sleep 1000")]
    log = (repo / ".ce/tmp/logs/hooks.log").read_text()
    assert "timed out after 1.2s" in log and "batch done" in log


def _runs(process: Path, command: str) -> bool:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").strip() == command.encode()
    except OSError:
        return False


def _with_remote(tmp_path: Path) -> tuple[Path, Path]:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES, config=BASE)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "-u", "origin", "main")
    return repo, origin


def test_push_sends_the_target_upstream_after_each_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, origin = _with_remote(tmp_path)
    assert ce(repo, monkeypatch, "--push") == 0
    capsys.readouterr()
    assert git(origin, "rev-parse", "main") == git(repo, "rev-parse", "main")


def test_rejected_push_pauses_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, origin = _with_remote(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    (other / "theirs.txt").write_text("theirs\n")
    git(other, "add", "theirs.txt")
    git(other, "commit", "-q", "-m", "someone else")
    git(other, "push", "-q", "origin", "main")

    assert ce(repo, monkeypatch, "--push") == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "PAUSED"
    assert "was rejected" in summary["pause_reason"]
    assert summary["prps"]["PRP-7.1.1"]["state"] == "merged"  # merged locally, not pushed
    assert summary["prps"]["PRP-7.2.1"]["state"] == "pending"


def test_push_without_upstream_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", TWO_STAGES, config=BASE)
    assert ce(repo, monkeypatch, "--push") == 2
    assert "--push needs an upstream" in capsys.readouterr().err
    assert not (repo / ".ce" / "tmp").exists()


REVIEWER = """\
set -eu
if [ "${CE_TASK:-}" = review ]; then
  printf '{"status": "FAILED", "findings": ["b.txt: should say B"]}' > "$CE_RESULT_PATH"
  exit 0
fi
case "$CE_PRP_ID" in
  PRP-7.1.1) echo a > a.txt ;;
  PRP-7.2.1) echo b > b.txt ;;
esac
git add -A
git commit -q -m "$CE_PRP_ID: Phase 1 - Step 1"
"""


def test_agent_review_verdict_failed_pauses_with_its_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewer = tmp_path / "reviewer.sh"
    reviewer.write_text(REVIEWER)
    specs = [
        Spec(id="PRP-7.1.1", title="Alpha", phases=[[]], files=["a.txt"]),
        Spec(id="PRP-7.2.1", title="Bravo", deps=["PRP-7.1.1"], phases=[[]], files=["b.txt"]),
    ]
    config = (
        "review_agent = true\n"
        f'[executor]\nname = "command"\n[executor.command]\nrun = "bash {reviewer}"\n'
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    assert ce(repo, monkeypatch) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "PAUSED"
    assert "review agent: b.txt: should say B" in summary["pause_reason"]
    assert summary["prps"]["PRP-7.2.1"]["state"] == "pending"
    assert (repo / ".ce/tmp/logs/review-stage-1.log").exists()
