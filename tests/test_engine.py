"""The engine end to end: real git repositories, real child processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from batchkit import Spec, append, git, make_batch_repo, write
from ce.cli import run

SIX = [
    Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
    Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[[write("b.txt", "b")], [write("shared.txt", "B")]],
        files=["b.txt", "shared.txt"],
        order=1,
    ),
    Spec(
        id="PRP-7.2.2",
        title="Charlie",
        deps=["PRP-7.1.1"],
        phases=[[write("c.txt", "c"), append("shared.txt", "C")]],
        files=["c.txt", "shared.txt"],
        order=2,
    ),
    Spec(
        id="PRP-7.2.3",
        title="Delta",
        deps=["7.1.1"],
        phases=[[write("d.txt", "d")], [append("d.txt", "dd")]],
        files=["d.txt"],
    ),
    Spec(
        id="PRP-7.3.1",
        title="Echo",
        deps=["PRP-7.2.1", "PRP-7.2.3"],
        phases=[[write("e.txt", "e")]],
        files=["e.txt"],
    ),
    Spec(
        id="PRP-7.2.4",
        title="Foxtrot",
        deps=["PRP-7.1.1"],
        phases=[[write("f.txt", "f")]],
        files=["f.txt"],
    ),
]


# Two PRPs of one stage that both write same.txt without declaring it: a real merge conflict.
SAME_FILE = [
    Spec(
        id="PRP-7.1.1",
        title="One",
        phases=[[write("one.txt", "1"), write("same.txt", "one")]],
        files=["one.txt"],
        order=1,
    ),
    Spec(
        id="PRP-7.1.2",
        title="Two",
        phases=[[write("two.txt", "2"), write("same.txt", "two")]],
        files=["two.txt"],
        order=2,
    ),
]
NO_DRIFT = 'executor = "script"\n[validate]\ndrift_threshold = 100\n'


def ce(repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(repo)
    return run(list(args))


def first_parent_subjects(repo: Path) -> list[str]:
    return git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()[::-1]


@pytest.mark.parametrize("schedule", ["stages", "eager"])
def test_six_prps_three_stages_end_to_end(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    schedule: str,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SIX)
    (repo / "notes.txt").write_text("mine, untracked\n")

    code = ce(
        repo,
        monkeypatch,
        "batch-exe",
        "--batch",
        "7",
        "--executor",
        "script",
        "--json",
        "--schedule",
        schedule,
    )

    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["status"] == "COMPLETED"
    assert summary["totals"]["completed"] == 6
    # Stages: 1 Alpha; 2 Bravo, Delta, Foxtrot; 3 Charlie (moved: shares shared.txt), Echo.
    assert [[p["id"] for p in s["prps"]] for s in summary["stages"]] == [
        ["PRP-7.1.1"],
        ["PRP-7.2.1", "PRP-7.2.3", "PRP-7.2.4"],
        ["PRP-7.2.2", "PRP-7.3.1"],
    ]
    merges = [s for s in first_parent_subjects(repo) if s.startswith("Merge ")]
    if schedule == "eager":  # any order that respects dependencies and shared files
        position = {m.split(":")[0].removeprefix("Merge "): n for n, m in enumerate(merges)}
        assert len(merges) == 6
        assert position["PRP-7.1.1"] == 0
        assert position["PRP-7.2.1"] < position["PRP-7.2.2"]  # shared.txt: serialized
        assert position["PRP-7.3.1"] > max(position["PRP-7.2.1"], position["PRP-7.2.3"])
    expected = [
        "Merge PRP-7.1.1: Alpha",
        "Merge PRP-7.2.1: Bravo",
        "Merge PRP-7.2.3: Delta",
        "Merge PRP-7.2.4: Foxtrot",
        "Merge PRP-7.2.2: Charlie",
        "Merge PRP-7.3.1: Echo",
    ]
    assert merges == expected if schedule == "stages" else sorted(merges) == sorted(expected)
    for name in ("a", "b", "c", "e", "f"):
        assert (repo / f"{name}.txt").read_text() == f"{name}\n"
    assert (repo / "d.txt").read_text() == "d\ndd\n"
    assert (repo / "shared.txt").read_text() == "B\nC\n"
    for prp in (repo / "PRPs" / "feature-requests").glob("PRP-7.*.md"):
        text = prp.read_text()
        assert "status: completed" in text
        assert "completion_date: " in text
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert (repo / "notes.txt").read_text() == "mine, untracked\n"
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    checkpoint = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    assert checkpoint["status"] == "COMPLETED"
    assert checkpoint["last_stage_completed"] == 3


def test_failing_validation_leaves_target_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = 'executor = "script"\n[validate]\nlevel3 = "bash -c \'test ! -f bad.txt\'"\n'
    specs = [Spec(id="PRP-7.1.1", title="Bad", phases=[[write("bad.txt", "x")]], files=["bad.txt"])]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    before = git(repo, "rev-parse", "main")

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--json")

    out = capsys.readouterr()
    assert code == 1
    summary = json.loads(out.out)
    prp = summary["prps"]["PRP-7.1.1"]
    assert prp["state"] == "partial"
    assert "L3" in prp["error"]
    assert prp["validation_results"]["level_3"]["passed"] is False
    # Only the .gitignore entry for .ce/tmp/ may have landed; no PRP work.
    assert "Merge" not in git(repo, "log", "--format=%s", f"{before}..main")
    assert not (repo / "bad.txt").exists()
    assert Path(prp["worktree"]).is_dir()  # kept for debugging
    assert summary["kept_worktrees"] == [prp["worktree"]]


def test_undeclared_conflict_pauses_with_first_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SAME_FILE, config=NO_DRIFT)

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7")

    out = capsys.readouterr()
    assert code == 1
    assert "PRP-7.1.2 conflicts with main in: same.txt" in out.out
    assert "--resume" in out.out
    assert (repo / "same.txt").read_text() == "one\n"
    markers = subprocess.run(  # noqa: PLW1510 (the exit code is the answer)
        ["git", "grep", "-l", "-e", "<<<<<<<", "main"], cwd=repo, capture_output=True, text=True
    )
    assert markers.returncode == 1, markers.stdout
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    checkpoint = json.loads((repo / ".ce/tmp/batch-execution-7.json").read_text())
    assert checkpoint["status"] == "PAUSED"


def test_dirty_repository_is_refused_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SIX[:1])
    (repo / "README.md").write_text("changed\n")

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7")

    err = capsys.readouterr().err
    assert code == 2
    assert "uncommitted changes to tracked files" in err
    assert "README.md" in err
    assert not (repo / ".ce" / "tmp").exists()
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_rerun_policy_executes_the_conflicting_prp_again_from_the_new_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        SAME_FILE[0],
        Spec(
            id="PRP-7.1.2",
            title="Two",
            phases=[
                [
                    write("two.txt", "2"),
                    "cat same.txt 2>/dev/null > seen.txt || true",
                    write("same.txt", "two"),
                ]
            ],
            files=["two.txt"],
            order=2,
        ),
    ]
    config = 'executor = "script"\n[validate]\ndrift_threshold = 100\n'
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--on-conflict", "rerun", "--json")

    out = capsys.readouterr()
    assert code == 0, out.err
    assert (repo / "same.txt").read_text() == "two\n"
    assert (repo / "seen.txt").read_text() == "one\n"  # the rerun started from One's result
    branches = git(repo, "branch", "--format=%(refname:short)").split()
    assert branches == ["main", "prp-7-1-2-two-conflict-1"]  # the first attempt is kept
    assert "running it again" in out.err


AGENT = """\
set -eu
if [ "$CE_TASK" = resolve-conflict ]; then
  git merge --no-edit "$CE_CONFLICT_WITH" > /dev/null 2>&1 || true
  printf 'one\\ntwo\\n' > same.txt
  git add same.txt
  git commit -q --no-edit
  exit 0
fi
case "$CE_PRP_ID" in
  PRP-7.1.1) echo 1 > one.txt; echo one > same.txt ;;
  PRP-7.1.2) echo 2 > two.txt; echo two > same.txt ;;
esac
git add -A
git commit -q -m "$CE_PRP_ID: Phase 1 - Step 1"
"""


def test_agent_policy_lets_the_executor_merge_and_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "agent.sh"
    agent.write_text(AGENT)
    specs = [
        Spec(id="PRP-7.1.1", title="One", phases=[[]], files=["one.txt"], order=1),
        Spec(id="PRP-7.1.2", title="Two", phases=[[]], files=["two.txt"], order=2),
    ]
    config = (
        '[executor]\nname = "command"\n'
        f'[executor.command]\nrun = "bash {agent}"\n'
        "[validate]\ndrift_threshold = 100\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--on-conflict", "agent", "--json")

    out = capsys.readouterr()
    assert code == 0, out.err
    assert (repo / "same.txt").read_text() == "one\ntwo\n"
    assert "merges main and resolves" in out.err
    # Logged as what it is (issue 16 item 8), not as `attempt 1, from phase 1`.
    assert "PRP-7.1.2: running: attempt 1, resolving its conflict with main" in out.err
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-7.1.2.log").read_text()
    assert "(resolving its conflict with main)" in log
    assert git(repo, "branch", "--format=%(refname:short)") == "main"


def test_agent_policy_with_a_script_that_cannot_resolve_fails_the_prp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SAME_FILE, config=NO_DRIFT)

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--on-conflict", "agent", "--json")

    out = capsys.readouterr()
    assert code == 1
    summary = json.loads(out.out)
    assert "conflict resolution failed" in summary["prps"]["PRP-7.1.2"]["error"]
    assert (repo / "same.txt").read_text() == "one\n"
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_a_file_touched_in_the_checkout_but_unchanged_does_not_block_the_fast_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the file's stat data is stale (touched, copied, restored from a backup): git's
    index still says it differs until refreshed, and `read-tree -m -u` refused the merge."""
    specs = [Spec(id="PRP-7.1.1", title="Readme", phases=[[write("README.md", "new")]])]
    repo = make_batch_repo(tmp_path / "repo", specs, config=NO_DRIFT)
    (repo / ".gitignore").write_text("*.log\n")  # ce adds `.ce/tmp/` to it, first of all
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore logs")
    for name in (".gitignore", "README.md"):
        os.utime(repo / name, (1_000_000_000, 1_000_000_000))
    assert ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--quiet") == 0
    assert (repo / "README.md").read_text() == "new\n"
    assert (repo / ".gitignore").read_text() == "*.log\n.ce/tmp/\n"
    assert git(repo, "status", "--porcelain") == ""
