"""A dry run to rely on before bed (issue 16 item 6), through the real CLI: the stages hold
what will run and done PRPs are listed apart; each PRP's dependencies, the executor and the
checks that will run are shown; the readiness checks a real run makes are warnings with the
exit code it would get; and at 80 columns no path or id is cut."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import assert_untouched, ce

LONG_PATH = "src/humanize/very/deeply/nested/package/of/the/exporter/command_line_interface.py"


def batch_47() -> list[Spec]:
    """Like the seeds' batch 47: 8 of its 10 PRPs completed, planned as a chain of stages."""
    done = [
        Spec(
            id=f"PRP-47.{n}.1",
            title=f"Finished part {n} of the exporter",
            status="completed",
            deps=[f"PRP-47.{n - 1}.1"] if n > 1 else [],
            phases=[[write(f"part{n}.txt", "x")]],
            files=[f"part{n}.txt"],
        )
        for n in range(1, 9)
    ]
    return [
        *done,
        Spec(
            id="PRP-47.9.1",
            title="Wire the exporter into the command line interface",
            deps=["PRP-47.8.1", "PRP-47.3.1"],
            phases=[[write(LONG_PATH, "cli = 1"), write("tests/test_exporter.py", "x = 1")]],
            files=[LONG_PATH, "tests/test_exporter.py"],
        ),
        Spec(
            id="PRP-47.9.2",
            title="Docs",
            deps=["PRP-47.5.1"],
            phases=[[write("docs/exporter.md", "docs")]],
            files=["docs/exporter.md"],
            extra={"validation": '{level3: "test -s docs/exporter.md"}'},
        ),
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_batch_repo(tmp_path / "repo", batch_47(), batch="47")


DRY = ("batch-exe", "--batch", "47", "--dry-run")


def test_done_prps_are_listed_apart_and_the_stages_hold_what_will_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    head = git(repo, "rev-parse", "main")

    plan = ce(repo, monkeypatch, capsys, *DRY, "--json")

    assert plan.code == 0, plan.err
    data = plan.json()
    # Stage numbers are the plan's (what --stage N names); only work left is in them.
    assert data["stages"] == {"6": ["PRP-47.9.2"], "9": ["PRP-47.9.1"]}
    assert data["done"] == [f"PRP-47.{n}.1" for n in range(1, 9)]
    assert {p["model"] for p in data["prps"].values()} <= {"haiku", "sonnet", "opus"}
    assert data["prps"]["PRP-47.9.1"]["dependencies"] == ["PRP-47.8.1", "PRP-47.3.1"]
    assert data["prps"]["PRP-47.1.1"]["stage"] == 1  # the DESIGN.md fields stay, for all PRPs
    assert data["executor"] == "script"
    checks = data["prps"]["PRP-47.9.2"]["validation"]
    assert checks["level_3"] == {
        "command": "test -s docs/exporter.md",
        "builtin": None,
        "source": "prp",
    }
    assert checks["level_4"]["builtin"].startswith("drift")
    assert data["readiness"] == {"ready": True, "problems": []}
    assert data["exit_code"] == 0
    assert_untouched(repo, head)


def test_the_plan_at_80_columns_cuts_no_path(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")

    shown = ce(repo, monkeypatch, capsys, *DRY)

    assert shown.code == 0, shown.err
    out = shown.out
    print(out)
    assert out.startswith("Batch 47: 2 PRPs to run in ")
    assert ", 8 done already\nExecutor: script\n" in out
    table = out[out.index("\nStage ") : out.index("\nDone already")]
    assert "PRP-47.1.1" not in table and " done " not in table  # the model column: models
    assert re.search(r"PRP-47\.9\.1 .* sonnet ", table)
    assert "PRP-47.8.1," in table and "PRP-47.3.1" in table  # its dependencies
    for n in range(1, 9):
        assert f"\n  PRP-47.{n}.1  Finished part {n} of the exporter (completed)\n" in out
    # Each path whole on one line; every other line fits in 80 columns.
    assert f"\n  PRP-47.9.1  {LONG_PATH}\n" in out
    assert "\n              tests/test_exporter.py\n" in out
    assert all(len(line) <= 80 for line in out.splitlines() if LONG_PATH not in line)
    assert "\n  L3 nothing (no test command configured or found)\n" in out
    assert "\n  PRP-47.9.2: L3 `test -s docs/exporter.md` (its own" in out
    assert out.endswith("\nReady: a real run would start now.\n")


def test_readiness_problems_are_warnings_with_the_exit_code_of_a_real_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".ce" / "config.toml").write_text('executor = "claud"\n', encoding="utf-8")
    git(repo, "commit", "-qam", "a typo in the executor")
    (repo / "README.md").write_text("edited\n", encoding="utf-8")  # a dirty checkout
    head = git(repo, "rev-parse", "main")
    monkeypatch.setenv("COLUMNS", "80")

    shown = ce(repo, monkeypatch, capsys, *DRY)
    real = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "47")

    assert shown.code == real.code == 2
    assert "Executor: claud\n" in shown.out
    readiness = shown.out[shown.out.index("A real run would not start (exit 2):") :]
    flat = " ".join(readiness.split())
    assert "warning: " + f"{repo}/.ce/config.toml: executor 'claud' is not an executor" in flat
    assert "choose one of script, command, claude, codex, gemini, aider." in flat
    assert f"warning: The repository at {repo} has uncommitted changes" in flat
    assert "README.md" in readiness
    assert "Traceback" not in shown.err
    as_json = ce(repo, monkeypatch, capsys, *DRY, "--json")
    assert as_json.code == 2
    assert len(as_json.json()["readiness"]["problems"]) == 2
    assert as_json.err.count("warning: ") == 2
    # --executor does not make the configuration's typo go away: a real run refuses it too.
    chosen = ce(repo, monkeypatch, capsys, *DRY, "--json", "--executor", "script")
    assert chosen.json()["executor"] == "script"
    assert chosen.code == 2 and "'claud'" in chosen.json()["readiness"]["problems"][0]
    assert (
        ce(
            repo, monkeypatch, capsys, "batch-exe", "--batch", "47", "-q", "--executor", "script"
        ).code
        == 2
    )
    git(repo, "checkout", "-q", "README.md")
    assert_untouched(repo, head)


def test_a_missing_agent_cli_is_a_readiness_problem(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = '[executor]\nname = "claude"\n[executor.claude]\nbinary = "/nonexistent/claude"\n'
    (repo / ".ce" / "config.toml").write_text(config, encoding="utf-8")
    git(repo, "commit", "-qam", "claude, not installed")

    shown = ce(repo, monkeypatch, capsys, *DRY, "--json")

    assert shown.code == 2
    (problem,) = shown.json()["readiness"]["problems"]
    assert "/nonexistent/claude" in problem
    assert shown.json()["executor"] == "claude"
    # What the dry run promised: the real run refuses with the same words and exit code.
    real = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "47")
    assert real.code == 2 and problem in real.err.replace("\n", " ")


def test_an_untracked_prp_and_a_dirty_checkout_are_both_reported(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = Spec(id="PRP-47.9.3", title="Late", phases=[[write("late.txt", "l")]])
    untracked = repo / "PRPs" / "feature-requests" / "PRP-47.9.3-late.md"
    untracked.write_text(extra.markdown("47"), encoding="utf-8")
    (repo / "README.md").write_text("edited\n", encoding="utf-8")

    shown = ce(repo, monkeypatch, capsys, *DRY, "--json")

    assert shown.code == 2
    problems = shown.json()["readiness"]["problems"]
    assert [p.split(":")[0] for p in problems] == [
        "These PRP files are not tracked by git",
        f"The repository at {repo} has uncommitted changes to tracked files",
    ]
    assert "PRPs/feature-requests/PRP-47.9.3-late.md" in problems[0]
    assert shown.json()["stages"]["1"] == ["PRP-47.9.3"]  # planned all the same


def test_the_real_run_runs_what_the_dry_run_showed(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = ce(repo, monkeypatch, capsys, *DRY, "--json").json()

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "47")

    assert result.code == 0, result.err
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    merged = [s.split()[1].rstrip(":") for s in subjects if s.startswith("Merge ")]
    assert sorted(merged) == sorted(p for ids in planned["stages"].values() for p in ids)
    # The summary, too, says the finished stages in a line each run of them.
    breakdown = result.out[result.out.index("Stage breakdown:") : result.out.index("\nValidation")]
    assert breakdown.splitlines()[1:] == [
        "  Stages 1-5: (done earlier)",
        "  Stage 6: ✓ PRP-47.9.2",
        "  Stages 7-8: (done earlier)",
        "  Stage 9: ✓ PRP-47.9.1",
    ]
