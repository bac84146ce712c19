"""`ce validate --level N [--prp ID]` by hand, in the worktrees a real run kept because their
validation failed: one PRP failing at each level, judged again by the same gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from clikit import ce, ce_process

CONFIG = 'executor = "script"\n[validate]\nlevel3 = "true"\n[monitor]\npoll_seconds = 0.2\n'
NO_BAD = "bash -c 'test ! -f bad.txt'"

SPECS = [
    # L1: a declared file is never written.
    Spec(
        id="PRP-7.1.1",
        title="Missing",
        phases=[[write("m.txt", "m")]],
        files=["m.txt", "promised.txt"],
    ),
    # L2: a Python file that does not compile (py_compile of changed files, the default).
    Spec(
        id="PRP-7.1.2",
        title="Syntax",
        phases=[[write("broken.py", "def f(:")]],
        files=["broken.py"],
    ),
    # L3: the PRP's own test command (frontmatter `validation`) fails.
    Spec(
        id="PRP-7.1.3",
        title="Tests",
        phases=[[write("bad.txt", "x")], [write("ok.py", "x = 1")]],
        files=["bad.txt", "ok.py"],
        extra={"validation": f'{{level3: "{NO_BAD}"}}'},
    ),
    # L4: three of four changed files are undeclared (drift 75 %).
    Spec(
        id="PRP-7.1.4",
        title="Drift",
        phases=[[write(f"{name}.txt", name) for name in ("d", "x1", "x2", "x3")]],
        files=["d.txt"],
    ),
]


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run in which every PRP failed validation: their worktrees are kept. Validation only
    reads, so the tests share it."""
    repo = make_batch_repo(tmp_path_factory.mktemp("validate") / "repo", SPECS, config=CONFIG)
    done = ce_process(repo, "batch-exe", "--batch", "7", "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    for n, level in ((1, "L1"), (2, "L2"), (3, "L3"), (4, "L4")):
        assert f"validation {level} failed" in done.stdout, done.stdout
        assert (repo.parent / f"repo-prp-7.1.{n}").is_dir()
    return repo.parent


def validate(
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> tuple[int, list[str]]:
    result = ce(cwd, monkeypatch, capsys, "validate", *args)
    assert "Traceback" not in result.err
    return result.code, result.out.splitlines()


PASS = {
    1: "Level 1 (structure): PASS",
    2: "Level 2 (syntax): PASS",
    3: "Level 3 (tests): PASS",
    4: "Level 4 (integration): PASS",
}


@pytest.mark.parametrize("failing", [1, 2, 3, 4])
def test_each_level_fails_where_the_run_failed_and_the_levels_below_pass(
    kept: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failing: int,
) -> None:
    worktree = kept / f"repo-prp-7.1.{failing}"
    prp = f"PRP-7.1.{failing}"

    if failing > 1:
        below = validate(worktree, monkeypatch, capsys, "--level", str(failing - 1), "--prp", prp)
        assert below == (0, [PASS[n] for n in range(1, failing)])
    code, lines = validate(worktree, monkeypatch, capsys, "--level", str(failing), "--prp", prp)

    assert code == 1
    names = {1: "structure", 2: "syntax", 3: "tests", 4: "integration"}
    assert lines[: failing - 1] == [PASS[n] for n in range(1, failing)]
    assert lines[failing - 1] == f"Level {failing} ({names[failing]}): FAIL"
    detail = "\n".join(lines[failing:])
    expected = {1: "promised.txt", 2: "broken.py", 3: NO_BAD, 4: "drift"}[failing]
    assert expected in detail


def test_all_levels_stop_at_the_first_failure(
    kept: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    worktree = kept / "repo-prp-7.1.3"

    code, lines = validate(worktree / "PRPs", monkeypatch, capsys, "--prp", "PRP-7.1.3")

    assert code == 1
    assert lines[:3] == [PASS[1], PASS[2], "Level 3 (tests): FAIL"]
    assert lines[-1] == "Level 4: not run (an earlier level failed)"


def test_the_prp_and_base_come_from_the_agent_environment(
    kept: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    worktree = kept / "repo-prp-7.1.3"
    base = git(worktree, "log", "-1", "--format=%H", "--grep=^ce: ignore")
    monkeypatch.setenv("CE_PRP_ID", "PRP-7.1.3")
    monkeypatch.setenv("CE_BASE", "HEAD")

    at_head = validate(worktree, monkeypatch, capsys, "--level", "3")
    given = validate(worktree, monkeypatch, capsys, "--level", "3", "--base", base)

    assert at_head[0] == 1
    assert at_head[1][:2] == [
        "Level 1 (structure): FAIL",
        "    the branch has no commits beyond its base",
    ]
    # --base wins over $CE_BASE; the PRP's own level3 (from $CE_PRP_ID) runs and fails.
    assert given == (1, [PASS[1], PASS[2], "Level 3 (tests): FAIL", f"    `{NO_BAD}` exited 1"])


def test_without_a_prp_only_the_repository_gates_run(
    kept: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CE_PRP_ID", raising=False)
    worktree = kept / "repo-prp-7.1.1"  # its L1 failure is about the PRP's declared files

    result = validate(worktree, monkeypatch, capsys, "--level", "4")

    assert result == (0, [PASS[1], PASS[2], PASS[3], PASS[4]])


def test_a_fixed_worktree_passes(
    kept: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    worktree = kept / "repo-prp-7.1.1"
    (worktree / "promised.txt").write_text("kept\n")
    git(worktree, "add", "promised.txt")
    git(worktree, "commit", "-q", "-m", "PRP-7.1.1: Phase 2 - Promise kept")
    try:
        code, lines = validate(worktree, monkeypatch, capsys, "--level", "1", "--prp", "PRP-7.1.1")
    finally:
        git(worktree, "reset", "-q", "--hard", "HEAD~1")  # the fixture is shared

    assert (code, lines) == (0, [PASS[1]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--base", "no-such-rev"), "--base no-such-rev: no such commit here"),
        (("--prp", "PRP-7.9.9"), "PRP-7.9.9 not found"),
        (("--level", "5"), "Invalid value for '--level'"),
    ],
)
def test_bad_arguments_exit_2(
    kept: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    result = ce(kept / "repo-prp-7.1.1", monkeypatch, capsys, "validate", *args)

    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_outside_a_repository_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ce(tmp_path, monkeypatch, capsys, "validate", "--level", "1")

    assert result.code == 2
    assert "is not inside a git repository" in result.err
