"""Running PRPs again (issue 16 item 4) through the real CLI: `--retry-prp ID` and `--stage N
--retry` run unmerged PRPs again from the target, their earlier attempts kept on
`<branch>-attempt-N`; a user's own fix committed in a kept worktree finishes its PRP on
`--resume`; the refusals exit 2 and change nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import branches, ce, merges, worktrees
from test_cli_run import STAGED

BATCH = ("batch-exe", "--batch", "7")


def specs(flag: Path) -> list[Spec]:
    """Alpha; Bravo, whose second phase fails until `flag` exists; Delta, which needs Bravo."""
    bravo = Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[[write("b.txt", "b")], [f"test -e {flag}", write("b2.txt", "b2")]],
        files=["b.txt", "b2.txt"],
    )
    return [STAGED[0], bravo, STAGED[3]]


def failed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Bravo partial (phase 1 committed, phase 2 failed), Delta skipped, Alpha merged."""
    repo = make_batch_repo(tmp_path / "repo", specs(tmp_path / "bravo-ok"))
    first = ce(repo, monkeypatch, capsys, *BATCH, "--continue-on-error", "--json")
    assert first.code == 1, first.err
    states = {p: r["state"] for p, r in first.json()["prps"].items()}
    assert states == {"PRP-7.1.1": "merged", "PRP-7.2.1": "partial", "PRP-7.3.1": "skipped"}
    fix = next(s for s in first.json()["next_steps"] if s.startswith("Fix PRP-7.2.1"))
    assert "commit your fix there and --resume validates and merges it" in fix
    assert fix.endswith("with `ce batch-exe --batch 7 --retry-prp PRP-7.2.1`")
    return repo


def log(repo: Path, rev: str) -> list[str]:
    return git(repo, "log", "--format=%s", rev).splitlines()


def test_retry_prp_runs_it_again_from_the_target_keeping_its_earlier_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = failed_once(tmp_path, monkeypatch, capsys)
    earlier = git(repo, "rev-parse", "prp-7-2-1-bravo")
    (tmp_path / "bravo-ok").touch()

    result = ce(repo, monkeypatch, capsys, *BATCH, "--retry-prp", "7.2.1", "--json")

    assert result.code == 0, result.err
    summary = result.json()
    assert {p: r["state"] for p, r in summary["prps"].items()} == {
        "PRP-7.1.1": "merged",  # by the first run, reported as the resumed batch's
        "PRP-7.2.1": "merged",
        "PRP-7.3.1": "merged",  # skipped because Bravo failed: runnable again
    }
    assert summary["kept_branches"] == ["prp-7-2-1-bravo-attempt-1"]
    page = (repo / ".ce/tmp/batch-7-report.html").read_text()
    assert "branch <code>prp-7-2-1-bravo-attempt-1</code> (an earlier attempt)" in page
    # The earlier attempt is whole on its renamed branch; the new one started from main.
    assert git(repo, "rev-parse", "prp-7-2-1-bravo-attempt-1") == earlier
    assert branches(repo) == ["main", "prp-7-2-1-bravo-attempt-1"]
    assert worktrees(repo) == 1
    subjects = log(repo, "main")
    assert sum(s.startswith("PRP-7.2.1: Phase 1 - ") for s in subjects) == 1
    assert sum(s.startswith("PRP-7.2.1: Phase 2 - ") for s in subjects) == 1
    # (The retried phase-1 commit may even be `earlier` itself: the same tree, parent, message
    # and second make the same commit. Each phase once on main is what must hold.)
    assert merges(repo)[-2:] == ["Merge PRP-7.2.1: Bravo", "Merge PRP-7.3.1: Delta"]


def test_the_text_summary_lists_the_kept_attempt_and_a_second_retry_keeps_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = failed_once(tmp_path, monkeypatch, capsys)

    again = ce(repo, monkeypatch, capsys, *BATCH, "--retry-prp", "PRP-7.2.1")  # fails again

    assert again.code == 1
    assert "branch prp-7-2-1-bravo-attempt-1 (an earlier attempt)" in again.out
    (tmp_path / "bravo-ok").touch()
    third = ce(repo, monkeypatch, capsys, *BATCH, "--retry-prp", "PRP-7.2.1")
    assert third.code == 0, third.err
    assert "branch prp-7-2-1-bravo-attempt-1 (an earlier attempt)" in third.out
    assert "branch prp-7-2-1-bravo-attempt-2 (an earlier attempt)" in third.out
    kept = ["main", "prp-7-2-1-bravo-attempt-1", "prp-7-2-1-bravo-attempt-2"]
    assert branches(repo) == kept


def test_cleanup_keeps_a_kept_attempt_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An earlier attempt holds commits the target lacks: `ce cleanup` keeps it and says so,
    `--force` deletes it with the rest."""
    repo = failed_once(tmp_path, monkeypatch, capsys)
    (tmp_path / "bravo-ok").touch()
    # The target moves on first: a retry from the same tip within the same second would make
    # the very commits of the earlier attempt (same parent, tree, message and dates), which the
    # target then holds and cleanup rightly deletes (1 run in 3 here once runs got faster).
    git(repo, "commit", "-q", "--allow-empty", "-m", "meanwhile on main")
    assert ce(repo, monkeypatch, capsys, *BATCH, "--retry-prp", "7.2.1").code == 0

    kept = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7")
    assert "prp-7-2-1-bravo-attempt-1" in kept.out + kept.err
    assert "an earlier attempt" in kept.out + kept.err
    assert branches(repo) == ["main", "prp-7-2-1-bravo-attempt-1"]

    forced = ce(repo, monkeypatch, capsys, "cleanup", "--batch", "7", "--force")
    assert forced.code == 0, forced.err
    assert branches(repo) == ["main"]


def test_stage_retry_runs_the_edited_prp_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = failed_once(tmp_path, monkeypatch, capsys)
    prp = next((repo / "PRPs" / "feature-requests").glob("PRP-7.2.1-*.md"))
    prp.write_text(prp.read_text().replace(f"test -e {tmp_path / 'bravo-ok'}", "true"))
    git(repo, "commit", "-q", "-am", "Bravo's second phase no longer waits for a flag")
    (repo.parent / "repo-prp-7.2.1" / "notes.txt").write_text("left uncommitted\n")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--stage", "2", "--retry", "--json")

    assert result.code == 0, result.err
    # What the earlier attempt left uncommitted is committed on its kept branch, not lost.
    kept = git(repo, "show", "prp-7-2-1-bravo-attempt-1:notes.txt")
    assert kept == "left uncommitted"
    assert not (repo / "notes.txt").exists()
    assert result.json()["prps"]["PRP-7.2.1"]["state"] == "merged"
    assert result.json()["kept_branches"] == ["prp-7-2-1-bravo-attempt-1"]
    assert (repo / "b2.txt").read_text() == "b2\n"
    rest = ce(repo, monkeypatch, capsys, *BATCH, "--json")  # Delta, stage 3
    assert rest.code == 0, rest.err
    assert merges(repo)[-1] == "Merge PRP-7.3.1: Delta"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--retry-prp", "7.1.1"), "--retry-prp PRP-7.1.1: it is completed"),
        (("--retry-prp", "7.9.9"), "--retry-prp 7.9.9: no such PRP in batch 7 (its PRPs: "),
        (("--retry",), "--retry runs again every unmerged PRP of one stage: give it with --stage"),
        (("--stage", "3", "--retry-prp", "7.2.1"), "PRP-7.2.1 is in stage 2, not stage 3"),
    ],
)
def test_a_retry_that_cannot_be_is_refused_and_changes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    repo = failed_once(tmp_path, monkeypatch, capsys)
    before = git(repo, "for-each-ref"), worktrees(repo)

    result = ce(repo, monkeypatch, capsys, *BATCH, *args)

    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
    assert (git(repo, "for-each-ref"), worktrees(repo)) == before


def test_a_retry_before_the_batch_ever_ran_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", specs(tmp_path / "flag"))

    result = ce(repo, monkeypatch, capsys, *BATCH, "--retry-prp", "7.2.1")

    assert result.code == 2
    assert "Batch 7 has not run yet: there is nothing to retry" in result.err
    assert branches(repo) == ["main"] and not (repo / ".ce" / "tmp").exists()


def test_a_user_fix_committed_in_the_kept_worktree_finishes_the_prp_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rule: commits the user adds on a kept PRP branch finish it (any subject), validated
    as they stand like any other work before they can reach the target; the executor is not
    launched again."""
    repo = failed_once(tmp_path, monkeypatch, capsys)
    worktree = repo.parent / "repo-prp-7.2.1"
    (worktree / "b2.txt").write_text("mine\n")
    git(worktree, "add", "b2.txt")
    git(worktree, "commit", "-q", "-m", "write b2 by hand")
    launches = (repo / ".ce/tmp/logs/PRP-7.2.1.log").read_text().count("[ce] attempt")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume", "--json")

    assert result.code == 0, result.err
    assert result.json()["prps"]["PRP-7.2.1"]["state"] == "merged"
    text = (repo / ".ce/tmp/logs/PRP-7.2.1.log").read_text()
    assert "your commits since ce stopped" in text
    assert text.count("[ce] attempt") == launches  # not launched again
    assert "write b2 by hand" in log(repo, "main")
    assert (repo / "b2.txt").read_text() == "mine\n"


def test_a_user_fix_that_fails_validation_stays_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's commits are validated like any other: a fix with conflict markers fails L1,
    and main does not move."""
    repo = failed_once(tmp_path, monkeypatch, capsys)
    head = git(repo, "rev-parse", "main")
    worktree = repo.parent / "repo-prp-7.2.1"
    (worktree / "b2.txt").write_text("<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n")
    git(worktree, "add", "b2.txt")
    git(worktree, "commit", "-q", "-m", "half a fix")

    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume", "--json")

    assert result.code == 1
    bravo = result.json()["prps"]["PRP-7.2.1"]
    assert bravo["state"] == "partial"
    assert re.search(r"validation L1 failed: conflict markers in b2\.txt", bravo["error"])
    assert git(repo, "rev-parse", "main") == head
