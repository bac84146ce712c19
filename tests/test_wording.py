"""Issue 16 item 8: the wording and small wrongs a user saw on a real repository, each through
the real CLI on a real repository, as it was seen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce.agents.base import ExecutorJob, Task
from ce.prp.model import Phase, Prp, StatusClass
from clikit import ce, ce_process

CONFIG = 'executor = "script"\n[monitor]\npoll_seconds = 0.2\ngrace_seconds = 0.2\n'
ALPHA = Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"])
BATCH = ("batch-exe", "--batch", "7")
README = Path(__file__).parent.parent / "README.md"
NO_DRIFT_TABLE = "[validate]\ndrift_threshold = 100\n"


def test_progress_lines_say_each_thing_once(tmp_path: Path) -> None:
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)

    done = ce_process(repo, *BATCH, "--json")

    assert done.returncode == 0, done.stderr
    assert "validated: validated" not in done.stderr
    assert "merge merge-tree" not in done.stderr
    assert re.search(r"PRP-7\.1\.1: validated$", done.stderr, re.MULTILINE)
    assert re.search(r"PRP-7\.1\.1: merging onto [0-9a-f]{10}$", done.stderr, re.MULTILINE)
    assert re.search(r"PRP-7\.1\.1: merged as [0-9a-f]{10}$", done.stderr, re.MULTILINE)


def test_a_missing_checkpoint_commit_is_worded_for_one_phase(tmp_path: Path) -> None:
    # An agent that committed phases 2 and 3 as checkpoints, and phase 1 under its own words.
    agent = tmp_path / "agent.sh"
    agent.write_text(
        "set -eu\n"
        "echo 1 > a.txt && git add -A && git commit -qm 'first steps'\n"
        "for n in 2 3; do echo $n > $n.txt; git add -A\n"
        '  git commit -qm "$CE_PRP_ID: Phase $n - Step $n"; done\n'
    )
    config = f'[executor]\nname = "command"\n[executor.command]\nrun = "bash {agent}"\n'
    spec = Spec(id="PRP-7.1.1", title="Gap", phases=[[], [], []], files=["a.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=config + NO_DRIFT_TABLE)

    done = ce_process(repo, *BATCH, "--json")

    error = json.loads(done.stdout)["prps"]["PRP-7.1.1"]["error"]
    assert error == "no checkpoint commit for phase 1 (2/3 done)"


def test_a_dependency_outside_the_run_says_what_its_status_means(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bravo = Spec(id="PRP-7.2.1", title="Bravo", deps=["PRP-7.1.1"], phases=[[write("b", "b")]])
    ready = Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a", "a")]], status="ready")
    repo = make_batch_repo(tmp_path / "repo", [ready, bravo], config=CONFIG)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "PRP-7.2.1", "--dry-run")

    assert result.code == 2
    assert "whose status is 'ready' (not done yet), and it is not part of this run" in result.err
    assert "(ready)" not in result.err


def test_an_unknown_dependency_gets_did_you_mean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bravo = Spec(id="PRP-7.2.1", title="Bravo", deps=["PRP-7.1.2"], phases=[[write("b", "b")]])
    repo = make_batch_repo(tmp_path / "repo", [ALPHA, bravo], config=CONFIG)

    result = ce(repo, monkeypatch, capsys, *BATCH, "--dry-run")

    assert result.code == 2
    assert "depends on PRP-7.1.2, which was not found in this run or among the PRP files " in (
        result.err
    )
    assert "(did you mean `PRP-7.1.1`?)" in result.err


def test_a_timed_out_prp_suggests_more_time_and_that_works(tmp_path: Path) -> None:
    spec = Spec(id="PRP-7.1.1", title="Slow", phases=[["sleep 4", write("s.txt", "s")]])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=CONFIG)

    done = ce_process(repo, *BATCH, "--timeout", "0.02")

    assert done.returncode == 1, done.stderr
    step = re.search(
        r"give it more time with `(ce batch-exe --batch 7 --resume) --timeout N`", done.stdout
    )
    assert step, done.stdout
    again = ce_process(repo, *step[1].split()[1:], "--timeout", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (repo / "s.txt").exists()


def test_a_refused_fast_forward_names_the_file_in_its_way(tmp_path: Path) -> None:
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)
    (repo / "a.txt").write_text("mine, untracked\n")

    done = ce_process(repo, *BATCH)

    assert done.returncode == 1
    assert "refused the fast-forward, and nothing was changed: a.txt is in the way: move it " in (
        done.stdout
    )
    assert ".." not in done.stdout.split("git said:")[1].split("\n")[0]
    assert (repo / "a.txt").read_text() == "mine, untracked\n"


SAME = [
    Spec(id="PRP-7.1.1", title="One", phases=[[write("same.txt", "one")]], order=1),
    Spec(id="PRP-7.1.2", title="Two", phases=[[write("same.txt", "two")]], order=2),
]
NO_DRIFT = CONFIG + NO_DRIFT_TABLE


def test_after_a_rerun_the_kept_branch_is_listed_and_cleanup_tells_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SAME, config=NO_DRIFT)

    done = ce(repo, monkeypatch, capsys, *BATCH, "--on-conflict", "rerun")

    assert done.code == 0, done.err
    assert "Kept for inspection:\n  branch prp-7-1-2-two-conflict-1 (an earlier attempt)" in (
        done.out
    )
    report = json.loads((repo / ".ce" / "tmp" / "batch-7-report.json").read_text())
    assert report["kept_branches"] == ["prp-7-1-2-two-conflict-1"]
    page = (repo / ".ce" / "tmp" / "batch-7-report.html").read_text()
    assert "branch <code>prp-7-1-2-two-conflict-1</code> (an earlier attempt)" in page
    cleanup = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")
    assert "kept PRP-7.1.2: branch prp-7-1-2-two-conflict-1 has commits not on main (an " in (
        cleanup.err
    )
    assert "--resume can still continue" not in cleanup.err
    assert "batch 7 is completed, so --resume has nothing to continue" in cleanup.err


def test_execute_prp_offers_only_the_options_of_one_prp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, "execute-prp", "--help")

    assert result.code == 0
    for batch_only in ("--stage", "--max-parallel", "--continue-on-error", "--schedule"):
        assert batch_only not in result.out
    assert "--batch-budget-usd" not in result.out
    for option in ("--resume", "--executor", "--model", "--timeout", "--on-conflict"):
        assert option in result.out
    refused = ce(tmp_path, monkeypatch, capsys, "execute-prp", "PRP-7.1.1", "--stage", "1")
    assert refused.code == 2 and "No such option '--stage'" in refused.err


@pytest.mark.parametrize(
    ("given", "model"),
    [("claude-sonnet-4-5", "claude-sonnet-4-5"), ("gpt-5-codex", "gpt-5-codex"), ("Opus", "opus")],
)
def test_model_accepts_a_model_name_as_well_as_a_tier(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str,
    model: str,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)

    result = ce(repo, monkeypatch, capsys, *BATCH, "--dry-run", "--json", "--model", given)

    assert result.code == 0, result.err
    assert result.json()["prps"]["PRP-7.1.1"]["model"] == model


def test_model_refuses_what_is_not_a_model_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, *BATCH, "--model", "big one", "--dry-run")

    assert result.code == 2
    assert "'big one' is not a model: write a tier (haiku, sonnet, opus) or a model name" in (
        result.err
    )


def test_a_model_name_reaches_the_executor(tmp_path: Path) -> None:
    config = (
        '[executor]\nname = "command"\n[executor.command]\nrun = "bash -c '
        "'echo $CE_MODEL > model.txt && git add -A && git commit -qm \\\"$CE_PRP_ID: Phase 1 - "
        'Step 1\\"\'"\n[validate]\ndrift_threshold = 100\n'
    )
    spec = Spec(id="PRP-7.1.1", title="One", phases=[[]], files=["model.txt"])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=config)

    done = ce_process(repo, *BATCH, "--model", "claude-sonnet-4-5")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (repo / "model.txt").read_text() == "claude-sonnet-4-5\n"


def test_a_wrong_batch_lists_the_batches_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "8", "--dry-run")

    assert result.code == 2
    assert "the only batch in" in result.err and " is 7; check the batch number" in result.err


def test_validate_on_the_target_validates_its_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)
    assert ce_process(repo, *BATCH).returncode == 0
    monkeypatch.delenv("CE_BASE", raising=False)
    monkeypatch.delenv("CE_PRP_ID", raising=False)

    result = ce(repo, monkeypatch, capsys, "validate", "--prp", "PRP-7.1.1")

    assert result.code == 0, result.out
    assert "the branch has no commits beyond its base" not in result.out
    assert "has no commits beyond its base: validating its tree as it is" in result.out
    assert "Level 1 (structure): PASS" in result.out


def test_validate_strips_terminal_escapes_from_what_it_captured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    coloured = "bash -c 'printf \"\\033[31mFAILED\\033[0m test_x\\n\"; exit 1'"
    config = CONFIG + f"[validate]\nlevel3 = {json.dumps(coloured)}\n"
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=config)
    monkeypatch.delenv("CE_BASE", raising=False)
    monkeypatch.delenv("CE_PRP_ID", raising=False)

    result = ce(repo, monkeypatch, capsys, "validate", "--level", "3")

    assert result.code == 1
    assert "    FAILED test_x" in result.out.splitlines()
    assert "\x1b" not in result.out


def test_executors_get_ce_base(tmp_path: Path) -> None:
    spec = Spec(id="PRP-7.1.1", title="Base", phases=[['printf "%s\\n" "$CE_BASE" > base.txt']])
    repo = make_batch_repo(tmp_path / "repo", [spec], config=NO_DRIFT)
    start = git(repo, "rev-parse", "HEAD")

    done = ce_process(repo, *BATCH)

    assert done.returncode == 0, done.stdout + done.stderr
    merge = git(repo, "log", "--merges", "-1", "--format=%H")
    assert (repo / "base.txt").read_text() == git(repo, "rev-parse", f"{merge}^1") + "\n"
    assert git(repo, "merge-base", "--is-ancestor", start, merge) == ""


def _executor_variables(tmp_path: Path) -> set[str]:
    prp = Prp(
        id="PRP-1.1.1",
        path=tmp_path / "PRP-1.1.1.md",
        title="t",
        status="planning",
        status_class=StatusClass.READY,
        phases=(Phase(number=1, title="x"),),
    )
    job = ExecutorJob(
        prp=prp,
        prp_path=prp.path,
        repo_root=tmp_path,
        worktree=tmp_path,
        branch="b",
        batch_id="1",
        stage=1,
        resume_from=1,
        model="sonnet",
        scratch=tmp_path,
        task=Task.resolving("main"),
    )
    given = job.environment({})
    # The worker adds these: the PRP's port block, and its base once its worktree exists.
    return {k for k in given if k.startswith("CE_")} | {"CE_PORT_BASE", "CE_BASE"}


def test_the_readme_documents_what_an_executor_receives(tmp_path: Path) -> None:
    text = README.read_text()

    missing = sorted(name for name in _executor_variables(tmp_path) if f"`{name}`" not in text)
    assert not missing
    assert "`--on-conflict pause\\|agent\\|rerun`" in text
    assert "DESIGN.md" not in text
    assert re.search(r"`setup`[^.]*top level", text)


def test_validate_on_the_target_compiles_every_python_file_of_its_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing changed since the base on the target itself: L2 checks the whole tree, not the
    empty list of changed files."""
    repo = make_batch_repo(tmp_path / "repo", [ALPHA], config=CONFIG)
    assert ce_process(repo, *BATCH).returncode == 0
    (repo / "broken.py").write_text("def f(:\n", encoding="utf-8")
    git(repo, "add", "broken.py")
    git(repo, "commit", "-q", "-m", "a broken module on main")
    monkeypatch.delenv("CE_BASE", raising=False)
    monkeypatch.delenv("CE_PRP_ID", raising=False)

    result = ce(repo, monkeypatch, capsys, "validate", "--level", "2")

    assert result.code == 1, result.out
    assert "broken.py" in result.out
