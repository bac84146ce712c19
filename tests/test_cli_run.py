"""`ce batch-exe` / `ce execute-prp` through the real entry point: the options of the CLI
surface (--stage, --continue-on-error, --timeout, --resume, --json), the refusals (exit 2,
nothing created) and the .gitignore entry, on real repositories with the script executor."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from batchkit import Spec, conflicting_pair, git, make_batch_repo, write
from ce.cli.group import all_commands
from clikit import CHILD_ENV, assert_untouched, branches, ce, ce_process, merges, worktrees

# Three stages: Alpha; Bravo and Charlie; Delta (after Bravo).
STAGED = [
    Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
    Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[[write("b.txt", "b")], [write("b2.txt", "b2")]],
        files=["b.txt", "b2.txt"],
    ),
    Spec(
        id="PRP-7.2.2",
        title="Charlie",
        deps=["PRP-7.1.1"],
        phases=[[write("c.txt", "c")]],
        files=["c.txt"],
    ),
    Spec(
        id="PRP-7.3.1",
        title="Delta",
        deps=["PRP-7.2.1"],
        phases=[[write("d.txt", "d")]],
        files=["d.txt"],
    ),
]

BATCH = ("batch-exe", "--batch", "7")


def test_stages_run_one_at_a_time_equal_a_full_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    full = make_batch_repo(tmp_path / "full" / "repo", STAGED)
    assert ce(full, monkeypatch, capsys, *BATCH, "--json").code == 0
    repo = make_batch_repo(tmp_path / "staged" / "repo", STAGED)

    first = ce(repo, monkeypatch, capsys, *BATCH, "--stage", "1", "--json")

    assert first.code == 0, first.err
    assert list(first.json()["prps"]) == ["PRP-7.1.1"]
    assert merges(repo) == ["Merge PRP-7.1.1: Alpha"]
    assert branches(repo) == ["main"]
    again = ce(repo, monkeypatch, capsys, *BATCH, "--stage", "1")
    assert again.code == 0
    assert "Batch 7: nothing to do, every PRP of stage 1 is done." in again.err
    # Stage numbers keep their meaning: Alpha is done but stays stage 1 of the plan.
    third = ce(repo, monkeypatch, capsys, *BATCH, "--stage", "3", "--json")
    assert third.code == 2
    assert "PRP-7.2.1, PRP-7.2.2 are not completed" in third.err
    assert third.json() == {"status": "ERROR", "exit_code": 2, "error": third.err[7:].strip()}
    second = ce(repo, monkeypatch, capsys, *BATCH, "--stage", "2", "--json")
    assert second.code == 0, second.err
    assert sorted(second.json()["prps"]) == ["PRP-7.2.1", "PRP-7.2.2"]
    assert ce(repo, monkeypatch, capsys, *BATCH, "--stage", "3").code == 0

    assert merges(repo) == merges(full)
    assert git(repo, "rev-parse", "main^{tree}") == git(full, "rev-parse", "main^{tree}")
    assert branches(repo) == ["main"] and worktrees(repo) == 1
    # Every stage done: a whole-batch run has nothing left.
    again = ce(repo, monkeypatch, capsys, *BATCH)
    assert again.code == 0
    assert "nothing to do" in again.err


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("2", "--stage 2 needs stage 1 done, but PRP-7.1.1 is not completed"),
        ("4", "--stage 4: the plan has stages 1 to 3"),
    ],
)
def test_stage_that_cannot_run_is_refused_and_nothing_is_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    message: str,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    head = git(repo, "rev-parse", "main")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--stage", stage)

    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert_untouched(repo, head)


# Bravo fails; Delta needs Bravo, Echo needs only Charlie.
FAILING = [
    STAGED[0],
    Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[["echo 'bravo is broken' >&2; exit 3"]],
        files=["b.txt"],
    ),
    Spec(
        id="PRP-7.2.2",
        title="Charlie",
        deps=["PRP-7.1.1"],
        # Slow enough that Bravo has failed before Charlie merges, in either schedule.
        phases=[["sleep 0.5", write("c.txt", "c")]],
        files=["c.txt"],
    ),
    STAGED[3],
    Spec(
        id="PRP-7.3.2",
        title="Echo",
        deps=["PRP-7.2.2"],
        phases=[[write("e.txt", "e")]],
        files=["e.txt"],
    ),
]


@pytest.mark.parametrize("schedule", ["stages", "eager"])
@pytest.mark.parametrize("go_on", [True, False], ids=["continue-on-error", "stop"])
def test_a_failed_prp_skips_its_dependents_or_stops_the_batch_after_its_stage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    schedule: str,
    go_on: bool,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", FAILING)
    flags = ["--continue-on-error"] if go_on else []

    result = ce(repo, monkeypatch, capsys, *BATCH, *flags, "--json", "--schedule", schedule)

    assert result.code == 1
    summary = result.json()
    prps = summary["prps"]
    states = {prp_id: prp["state"] for prp_id, prp in prps.items()}
    assert "bravo is broken" in (repo / ".ce/tmp/logs/PRP-7.2.1.log").read_text()
    # The failed PRP's worktree and branch are kept for debugging.
    assert summary["kept_worktrees"] == [prps["PRP-7.2.1"]["worktree"]]
    assert branches(repo) == ["main", "prp-7-2-1-bravo"]
    if go_on:  # Delta (needs Bravo) is skipped; Echo (needs Charlie only) goes on.
        assert states == {
            "PRP-7.1.1": "merged",
            "PRP-7.2.1": "failed",
            "PRP-7.2.2": "merged",
            "PRP-7.3.1": "skipped",
            "PRP-7.3.2": "merged",
        }
        assert prps["PRP-7.3.1"]["error"] == "dependency PRP-7.2.1 did not merge"
        assert sorted(merges(repo)) == [
            "Merge PRP-7.1.1: Alpha",
            "Merge PRP-7.2.2: Charlie",
            "Merge PRP-7.3.2: Echo",
        ]
        return
    # The stage under way finishes (Charlie merges); no later stage starts.
    assert states == {
        "PRP-7.1.1": "merged",
        "PRP-7.2.1": "failed",
        "PRP-7.2.2": "merged",
        "PRP-7.3.1": "pending",
        "PRP-7.3.2": "pending",
    }
    assert summary["status"] == "FAILED"
    assert summary["totals"]["not_started"] == 2
    assert merges(repo) == ["Merge PRP-7.1.1: Alpha", "Merge PRP-7.2.2: Charlie"]
    assert any("--resume" in step for step in summary["next_steps"])


def test_execute_prp_runs_one_prp_and_refuses_one_whose_dependency_is_not_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    head = git(repo, "rev-parse", "main")

    refused = ce(repo, monkeypatch, capsys, "execute-prp", "PRP-7.2.1")

    assert refused.code == 2
    assert "PRP-7.2.1" in refused.err and "depends on PRP-7.1.1" in refused.err
    assert_untouched(repo, head)

    done = ce(repo, monkeypatch, capsys, "execute-prp", "PRP-7.1.1", "--json")

    assert done.code == 0, done.err
    summary = done.json()
    assert list(summary["prps"]) == ["PRP-7.1.1"]
    assert summary["prps"]["PRP-7.1.1"]["state"] == "merged"
    assert merges(repo) == ["Merge PRP-7.1.1: Alpha"]
    assert "status: completed" in _prp_file(repo, "PRP-7.1.1").read_text()
    again = ce(repo, monkeypatch, capsys, "execute-prp", "PRP-7.1.1")
    assert (again.code, again.out) == (0, "")
    assert "Batch 7: nothing to do, PRP-7.1.1 is done." in again.err
    # Its dependency done, the next one runs (by file path this time).
    path = _prp_file(repo, "PRP-7.2.1")
    assert ce(repo, monkeypatch, capsys, "execute-prp", str(path)).code == 0
    assert merges(repo) == ["Merge PRP-7.1.1: Alpha", "Merge PRP-7.2.1: Bravo"]
    assert (repo / "b2.txt").read_text() == "b2\n"
    assert branches(repo) == ["main"] and worktrees(repo) == 1


def test_timeout_in_fractional_minutes_fails_a_slow_prp(tmp_path: Path) -> None:
    config = 'executor = "script"\n[monitor]\npoll_seconds = 0.2\ngrace_seconds = 0.2\n'
    specs = [Spec(id="PRP-7.1.1", title="Slow", phases=[["sleep 60"]], files=["s.txt"])]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    done = ce_process(repo, "execute-prp", "PRP-7.1.1", "--timeout", "0.02", "--json")

    assert done.returncode == 1, done.stderr
    prp = json.loads(done.stdout)["prps"]["PRP-7.1.1"]
    assert prp["state"] == "failed"
    assert prp["error"].startswith("timed out after 1")
    assert merges(repo) == []


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_timeout_must_be_a_positive_number_of_minutes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED[:1])

    result = ce(repo, monkeypatch, capsys, *BATCH, "--timeout", value)

    assert result.code == 2
    assert "--timeout" in result.err
    assert_untouched(repo, git(repo, "rev-parse", "main"))


def test_resume_without_a_checkpoint_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    head = git(repo, "rev-parse", "main")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume")

    assert result.code == 2
    assert "nothing to resume" in result.err
    assert "without --resume" in result.err
    assert_untouched(repo, head)


def test_resume_of_a_finished_batch_has_nothing_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    assert ce(repo, monkeypatch, capsys, *BATCH).code == 0
    head = git(repo, "rev-parse", "main")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume", "--json")

    assert result.code == 0
    assert "nothing to do" in result.err
    assert result.json()["status"] == "COMPLETED"
    assert git(repo, "rev-parse", "main") == head
    assert branches(repo) == ["main"] and worktrees(repo) == 1


CONFLICTING = [
    *conflicting_pair(),
    Spec(id="PRP-7.2.1", title="After", deps=["PRP-7.1.2"], phases=[[write("z.txt", "z")]]),
]
LENIENT = 'executor = "script"\n[validate]\ndrift_threshold = 100\n[monitor]\npoll_seconds = 0.2\n'


def test_a_paused_batch_is_refused_without_resume_and_resumes_after_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", CONFLICTING, config=LENIENT)
    assert ce(repo, monkeypatch, capsys, *BATCH).code == 1
    checkpoint = repo / ".ce/tmp/batch-execution-7.json"
    assert json.loads(checkpoint.read_text())["status"] == "PAUSED"
    before = checkpoint.read_text(), git(repo, "rev-parse", "main"), branches(repo)

    refused = ce(repo, monkeypatch, capsys, *BATCH)

    assert refused.code == 2
    assert "ce batch-exe --batch 7 --resume" in refused.err
    assert "ce cleanup --batch 7" in refused.err
    assert (checkpoint.read_text(), git(repo, "rev-parse", "main"), branches(repo)) == before

    # What the pause message says: merge the target in the PRP's worktree, resolve, resume.
    reason = json.loads(checkpoint.read_text())["pause_reason"]
    worktree = Path(re.findall(r"^  cd (\S+)$", reason, re.MULTILINE)[0])
    assert worktree == tmp_path / "repo-prp-7.1.2"
    merge = subprocess.run(["git", "merge", "main"], cwd=worktree, capture_output=True, check=False)
    assert merge.returncode == 1  # the conflict, as announced
    (worktree / "same.txt").write_text("One\nTwo\n")
    git(worktree, "add", "same.txt")
    git(worktree, "commit", "-q", "--no-edit")

    resumed = ce(repo, monkeypatch, capsys, *BATCH, "--resume", "--json")

    assert resumed.code == 0, resumed.err
    states = {p: r["state"] for p, r in resumed.json()["prps"].items()}
    assert states == {"PRP-7.1.1": "merged", "PRP-7.1.2": "merged", "PRP-7.2.1": "merged"}
    assert merges(repo) == [
        "Merge PRP-7.1.1: One",
        "Merge PRP-7.1.2: Two",
        "Merge PRP-7.2.1: After",
    ]
    assert (repo / "same.txt").read_text() == "One\nTwo\n"
    assert (repo / "z.txt").exists()
    assert branches(repo) == ["main"] and worktrees(repo) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


@pytest.mark.parametrize("leftover", ["branch", "worktree"])
def test_work_left_by_an_earlier_run_is_refused_without_resume(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    leftover: str,
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    head = git(repo, "rev-parse", "main")
    if leftover == "branch":
        git(repo, "branch", "prp-7-2-2-charlie")
        expected = "PRP-7.2.2: branch prp-7-2-2-charlie already exists"
    else:
        (tmp_path / "repo-prp-7.3.1").mkdir()
        expected = f"PRP-7.3.1: {tmp_path / 'repo-prp-7.3.1'} already exists"

    result = ce(repo, monkeypatch, capsys, *BATCH)

    assert result.code == 2
    assert expected in result.err
    assert "ce cleanup --batch 7" in result.err
    assert not (repo / ".ce" / "tmp").exists()
    assert git(repo, "rev-parse", "main") == head
    assert worktrees(repo) == 1


def test_gitignore_entry_is_committed_through_the_lane_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED[:1])
    (repo / ".gitignore").write_text("*.pyc")  # no trailing newline
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore pyc")
    (repo / "mine.txt").write_text("untracked\n")

    assert ce(repo, monkeypatch, capsys, *BATCH).code == 0

    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert subjects.count("ce: ignore .ce/tmp/") == 1
    assert git(repo, "show", "main:.gitignore") == "*.pyc\n.ce/tmp/"
    assert (repo / ".gitignore").read_text() == "*.pyc\n.ce/tmp/\n"  # the checkout follows
    assert git(repo, "status", "--porcelain") == "?? mine.txt"
    # A second batch does not add it again.
    assert ce(repo, monkeypatch, capsys, "execute-prp", "PRP-7.1.1").code == 0
    assert git(repo, "log", "--format=%s", "main").splitlines().count("ce: ignore .ce/tmp/") == 1


def test_gitignore_already_ignoring_the_state_gets_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED[:1])
    (repo / ".gitignore").write_text(".ce/tmp/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore ce state")

    assert ce(repo, monkeypatch, capsys, *BATCH).code == 0

    assert "ce: ignore .ce/tmp/" not in git(repo, "log", "--format=%s", "main").splitlines()
    assert git(repo, "status", "--porcelain") == ""


def test_json_prints_one_object_on_stdout_and_progress_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)

    result = ce(repo, monkeypatch, capsys, *BATCH, "--json")

    assert result.code == 0
    summary, end = json.JSONDecoder().raw_decode(result.out)
    assert result.out[end:].strip() == ""
    assert summary["status"] == "COMPLETED" and summary["exit_code"] == 0
    assert summary["totals"]["completed"] == 4
    assert "PRP-7.2.1: merged" in result.err  # progress, plain lines
    assert "Batch 7: COMPLETED" not in result.out  # no rendered summary on stdout


def test_dry_run_json_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    head = git(repo, "rev-parse", "main")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--dry-run", "--json")

    assert result.code == 0
    plan = result.json()
    assert plan["stages"] == {
        "1": ["PRP-7.1.1"],
        "2": ["PRP-7.2.1", "PRP-7.2.2"],
        "3": ["PRP-7.3.1"],
    }
    assert set(plan) >= {"batch_id", "stages", "file_conflicts", "moves", "prps"}
    assert_untouched(repo, head)


def _break_yaml(repo: Path) -> str:
    path = _prp_file(repo, "PRP-7.2.1")
    path.write_text(path.read_text().replace("title: Bravo", "title: [Bravo"))
    return f"{path}: the YAML frontmatter is malformed at line 4"


def _unknown_status(repo: Path) -> str:
    path = _prp_file(repo, "PRP-7.2.2")
    path.write_text(path.read_text().replace("status: planning", "status: finished-ish"))
    return f"{path}: field `status`: 'finished-ish' is not a status ce knows"


def _cycle(repo: Path) -> str:
    path = _prp_file(repo, "PRP-7.1.1")
    path.write_text(path.read_text().replace("dependencies: []", 'dependencies: ["PRP-7.3.1"]'))
    return "Dependency cycle: PRP-7.1.1 → PRP-7.3.1 → PRP-7.2.1 → PRP-7.1.1"


def _unknown_dependency(repo: Path) -> str:
    path = _prp_file(repo, "PRP-7.3.1")
    path.write_text(path.read_text().replace('["PRP-7.2.1"]', '["PRP-7.2.1", "PRP-7.9.9"]'))
    return f"PRP-7.3.1 ({path}) depends on PRP-7.9.9, which was not found"


def _missing_prp_dir(repo: Path) -> str:
    (repo / ".ce" / "config.toml").write_text('executor = "script"\nprp_dir = "PRPs/nowhere"\n')
    return f"the PRP directory {repo / 'PRPs/nowhere'} does not exist"


def _bad_config(repo: Path) -> str:
    (repo / ".ce" / "config.toml").write_text('executor = "script"\nmax_parallel = "many"\n')
    return "max_parallel"


def _prp_file(repo: Path, prp_id: str) -> Path:
    return next((repo / "PRPs" / "feature-requests").glob(f"{prp_id}-*.md"))


@pytest.mark.parametrize(
    "case",
    [
        (_break_yaml, BATCH),
        (_unknown_status, BATCH),
        (_cycle, BATCH),
        (_unknown_dependency, BATCH),
        (_missing_prp_dir, BATCH),
        (_bad_config, BATCH),
        (lambda repo: "no PRP files match", ("batch-exe", "--batch", "9")),
        (lambda repo: "Nothing to run", ("batch-exe",)),
        (lambda repo: "PRP-7.9.9", ("execute-prp", "PRP-7.9.9")),
    ],
    ids=[
        "malformed-yaml",
        "unknown-status",
        "cycle",
        "unknown-dependency",
        "missing-prp-dir",
        "bad-config",
        "empty-batch",
        "no-prps",
        "unknown-prp",
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_bad_input_exits_2_with_one_clear_paragraph_and_creates_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[Callable[[Path], str], tuple[str, ...]],
    as_json: bool,
) -> None:
    breakage, args = case
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    expected = breakage(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "broken input")
    head = git(repo, "rev-parse", "main")

    result = ce(repo, monkeypatch, capsys, *args, *(["--json"] if as_json else []))

    assert result.code == 2, result.err
    assert expected in result.err
    assert result.err.startswith("error: ")
    assert "Traceback" not in result.err and "\n\n" not in result.err.strip()
    if as_json:
        assert result.json()["error"] in result.err
    else:
        assert result.out == ""
    assert_untouched(repo, head)


def _commands() -> dict[str, click.Command]:
    return dict(sorted(all_commands().items()))


def test_top_level_help_lists_every_command_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, "--help")

    assert result.code == 0
    assert result.out.startswith("Usage: ce [OPTIONS] COMMAND [ARGS]...")
    listed = result.out.split("Commands:\n", 1)[1]
    for name in _commands():
        assert f"\n  {name} " in f"\n{listed}"
    assert "..." not in listed  # no description cut short


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_help_describing_each_option(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, name, "--help")

    assert result.code == 0
    assert result.out.startswith(f"Usage: ce {name} ")
    assert not (tmp_path / ".ce").exists()
    for param in _commands()[name].params:
        if isinstance(param, click.Option):
            assert param.help, f"ce {name} {param.opts[0]} has no help text"
            assert param.opts[0] in result.out


def test_batch_exe_help_shows_the_contract_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, "batch-exe", "-h")

    assert result.code == 0
    for option in (
        "--batch N",
        "--stage N",
        "--resume",
        "--dry-run",
        "--json",
        "--executor [script|command|claude|codex|gemini|aider]",
        "--model [haiku|sonnet|opus|NAME]",
        "--max-parallel N",
        "--timeout MIN",
        "--continue-on-error",
        "--no-auto-review",
    ):
        assert re.search(rf"^  {re.escape(option)}\s", result.out, re.MULTILINE), option
    assert "Minutes per PRP, fractions allowed" in result.out


@pytest.mark.parametrize(("slots", "expected"), [("1", 1), ("2", 2), ("0", 3)])
def test_max_parallel_bounds_how_many_prps_run_at_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    slots: str,
    expected: int,
) -> None:
    facts, started = tmp_path / "facts", tmp_path / "started"
    facts.mkdir()
    started.mkdir()
    # Each PRP waits (a while at most) until as many as expected have started: however slow
    # the machine, the expected ones overlap, and a broken limit shows as more than expected.
    timed = f"""
        date +%s.%N >> {facts}/$CE_PRP_ID
        touch {started}/$CE_PRP_ID
        for _ in $(seq 100); do
            [ "$(ls {started} | wc -l)" -ge {expected} ] && break
            sleep 0.1
        done
        sleep 0.3
        date +%s.%N >> {facts}/$CE_PRP_ID
    """
    specs = [
        Spec(id=f"PRP-7.1.{n}", title=f"P{n}", phases=[[timed, write(f"{n}.txt", "x")]])
        for n in (1, 2, 3)
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)

    result = ce(repo, monkeypatch, capsys, *BATCH, "--max-parallel", slots)

    assert result.code == 0, result.err
    spans = [[float(t) for t in path.read_text().split()] for path in facts.iterdir()]
    most = max(sum(1 for start, end in spans if start <= at < end) for at, _ in spans)
    assert most == expected


MISSING_AGENT = (
    '[executor]\nname = "claude"\n[executor.claude]\nbinary = "/nonexistent/claude"\n'
    "[monitor]\npoll_seconds = 0.2\n"
)


def test_cli_flags_win_over_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", STAGED[:2], config=MISSING_AGENT)
    head = git(repo, "rev-parse", "main")

    refused = ce(repo, monkeypatch, capsys, *BATCH)
    assert refused.code == 2
    assert "/nonexistent/claude" in refused.err and "Traceback" not in refused.err
    assert_untouched(repo, head)
    plan = ce(repo, monkeypatch, capsys, *BATCH, "--dry-run", "--json", "--model", "opus")
    assert {p["model"] for p in plan.json()["prps"].values()} == {"opus"}

    result = ce(repo, monkeypatch, capsys, *BATCH, "--executor", "script", "--json")

    assert result.code == 0, result.err
    assert merges(repo) == ["Merge PRP-7.1.1: Alpha", "Merge PRP-7.2.1: Bravo"]


def _detach(repo: Path) -> Path:
    git(repo, "checkout", "-q", "--detach")
    return repo


@pytest.mark.parametrize(
    "case",
    [
        (lambda repo: repo.parent / "elsewhere", BATCH, "is not inside a git repository"),
        (_detach, BATCH, "HEAD is detached"),
        (lambda repo: repo, (*BATCH, "PRP-7.1.1"), "either --batch N or PRP"),
    ],
    ids=["not-a-repository", "detached-head", "batch-and-prps"],
)
def test_a_wrong_environment_exits_2_and_creates_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[Callable[[Path], Path], tuple[str, ...], str],
) -> None:
    where, args, message = case
    repo = make_batch_repo(tmp_path / "repo", STAGED)
    (tmp_path / "elsewhere").mkdir()
    cwd = where(repo)

    result = ce(cwd, monkeypatch, capsys, *args)

    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err
    assert not (repo / ".ce" / "tmp").exists() and not (cwd / ".ce" / "tmp").exists()
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/heads") == "refs/heads/main"
    assert worktrees(repo) == 1


def test_ctrl_c_with_json_prints_one_object_and_exits_130(tmp_path: Path) -> None:
    slow = [Spec(id="PRP-7.1.1", title="Slow", phases=[["sleep 30"], [write("s.txt", "s")]])]
    repo = make_batch_repo(tmp_path / "repo", slow)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", *BATCH, "--json"],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = repo / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log"
    deadline = time.monotonic() + 30
    while "phase 1 block 1/1" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the PRP never started"
        time.sleep(0.05)

    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)

    assert child.returncode == 130, err
    assert json.loads(out) == {
        "batch_id": "7",
        "status": "INTERRUPTED",
        "exit_code": 130,
        "resume_command": "ce batch-exe --batch 7 --resume",
    }
    assert "Continue with: ce batch-exe --batch 7 --resume" in err
