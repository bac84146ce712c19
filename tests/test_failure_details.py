"""Why a PRP failed, where the user looks (issue 16 item 5): the lines of a failed check that
matter in the summary, `--json`, JUnit and the board; its whole output in the PRP's log; and
`ce logs PRP [-f] [--batch N]` to read that log."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from batchkit import Spec, make_batch_repo, write
from ce.core.excerpt import LINES_PER_CHECK, failure_lines, reason
from ce.run.record import LevelResult
from ce.ui.render import render
from clikit import CHILD_ENV, ce
from ui_samples import T0, paused_board

PYTEST_OUTPUT = """\
.F                                                                       [100%]
=================================== FAILURES ===================================
________________________________ test_subtracts ________________________________

    def test_subtracts():
>       assert 3 - 1 == 1
E       assert (3 - 1) == 1

tests/test_calc.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_subtracts - assert (3 - 1) == 1
1 failed, 1 passed in 0.05s
"""


def test_pytest_output_gives_its_failed_tests_and_errors() -> None:
    assert failure_lines(PYTEST_OUTPUT) == (
        "tests/test_calc.py:5: AssertionError",
        "FAILED tests/test_calc.py::test_subtracts - assert (3 - 1) == 1",
        "1 failed, 1 passed in 0.05s",
    )
    assert reason(["`pytest -q` exited 1"], failure_lines(PYTEST_OUTPUT)) == (
        "FAILED tests/test_calc.py::test_subtracts - assert (3 - 1) == 1 (`pytest -q` exited 1)"
    )


def test_other_output_gives_its_last_ten_lines() -> None:
    output = "\n".join(f"line {n}" for n in range(1, 31)) + "\n\n"
    assert failure_lines(output) == tuple(f"line {n}" for n in range(21, 31))
    assert reason(["`make lint` exited 2"], failure_lines(output)) == "`make lint` exited 2"


def test_many_failures_are_capped_keeping_the_test_summary() -> None:
    tracebacks = [f"src/m{n}.py:3: ValueError" for n in range(30)]
    summary = [f"FAILED tests/test_{n}.py::test_it - ValueError" for n in range(5)]
    lines = failure_lines("\n".join([*tracebacks, *summary, "5 failed in 1.00s"]))

    assert len(lines) == LINES_PER_CHECK
    assert lines[-1] == "... and 17 more such lines"
    assert lines[-7:-1] == (*summary, "5 failed in 1.00s")


def test_a_failed_check_is_saved_whole_in_the_checkpoint() -> None:
    failed = LevelResult(
        passed=False,
        errors=["`pytest -q` exited 1"],
        command="pytest -q",
        exit_code=1,
        excerpt=list(failure_lines(PYTEST_OUTPUT)),
    )
    assert LevelResult.from_json(failed.to_json()) == failed
    assert LevelResult.from_json({"passed": True}) == LevelResult(passed=True)  # older files


def test_the_board_says_why_a_prp_failed() -> None:
    lines = [line.plain for line in render(paused_board(), T0 + 9999, 100)]

    assert "PRP-43.2.2 partial: validation L3 failed: 2 tests failed" in lines
    assert "PRP-43.2.3 conflict: merge conflict in docs/index.md" in lines


# -- through the CLI, on a real repository with a real pytest ----------------------------------

CALC_TESTS = """\
mkdir -p tests
cat > tests/test_calc.py <<'PY'
def test_adds():
    assert 1 + 1 == 2


def test_subtracts():
    assert 3 - 1 == 1
PY"""
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
CONFIG = f"""\
executor = "script"
[monitor]
poll_seconds = 0.2
[validate]
level3 = "{PYTEST}"
"""
FAILED_LINE = "FAILED tests/test_calc.py::test_subtracts - assert (3 - 1) == 1"


@pytest.fixture
def failing_batch(tmp_path: Path) -> Path:
    """Alpha passes (its own test passes); Calc brings one failing test."""
    specs = [
        Spec(
            id="PRP-7.1.1",
            title="Alpha",
            phases=[[write("tests/test_alpha.py", "def test_alpha(): pass")]],
            files=["tests/test_alpha.py"],
        ),
        Spec(id="PRP-7.1.2", title="Calc", phases=[[CALC_TESTS]], files=["tests/test_calc.py"]),
    ]
    return make_batch_repo(tmp_path / "repo", specs, config=CONFIG)


def test_the_summary_shows_the_failed_test(
    failing_batch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = ce(failing_batch, monkeypatch, capsys, "batch-exe", "--batch", "7")

    with capsys.disabled():  # the acceptance note quotes it (pytest -s shows it)
        print(result.out)
    assert result.code == 1
    lines = result.out.splitlines()
    calc = lines.index(f"  PRP-7.1.2: ⚠ L3 failed: `{PYTEST}` exited 1")
    assert lines[calc + 1 : calc + 5] == [
        "        tests/test_calc.py:6: AssertionError",
        f"        {FAILED_LINE}",
        next(line for line in lines if line.startswith("        1 failed, 1 passed in ")),
        "        the whole output: ce logs PRP-7.1.2",
    ]
    assert "  PRP-7.1.1: ✓ All levels passed" in lines
    assert f"Fix PRP-7.1.2 (validation L3 failed: {FAILED_LINE} (`{PYTEST}` exited 1))" in (
        result.out
    )

    # The same lines in --json (the report), and in JUnit's failure.
    report = (failing_batch / ".ce" / "tmp" / "batch-7-report.json").read_text(encoding="utf-8")
    level = json.loads(report)["prps"]["PRP-7.1.2"]["validation_results"]["level_3"]
    assert (level["command"], level["exit_code"]) == (PYTEST, 1)
    assert FAILED_LINE in level["excerpt"]
    page = (failing_batch / ".ce" / "tmp" / "batch-7-report.html").read_text(encoding="utf-8")
    assert FAILED_LINE.replace(">", "&gt;") in page
    junit = ET.parse(failing_batch / ".ce" / "tmp" / "batch-7-junit.xml")
    (failure,) = junit.getroot().iter("failure")
    assert FAILED_LINE in (failure.get("message") or "")
    assert f"  {FAILED_LINE}" in (failure.text or "").splitlines()

    # The whole output is in the PRP's log, after its agent's output and ce's notes.
    log = ce(failing_batch, monkeypatch, capsys, "logs", "7.1.2")
    assert log.code == 0
    assert log.out.index("[ce] attempt 1: ") < log.out.index(f"[ce] $ {PYTEST}\n")
    assert ">       assert 3 - 1 == 1\n" in log.out
    assert f"{FAILED_LINE}\n" in log.out
    assert log.out.endswith(f"[ce] validation L3: failed: `{PYTEST}` exited 1\n")
    assert "[ce] validation L1: passed\n" in log.out


def test_logs_of_an_unknown_prp_lists_the_known_ones(
    failing_batch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ce(failing_batch, monkeypatch, capsys, "logs", "PRP-7.1.1")
    assert before.code == 2
    assert "Known PRPs: none (no batch has been run here)." in before.err
    assert ce(failing_batch, monkeypatch, capsys, "batch-exe", "--batch", "7").code == 1

    unknown = ce(failing_batch, monkeypatch, capsys, "logs", "PRP-7.9")
    assert unknown.code == 2
    assert unknown.err == (
        "error: PRP-7.9 is not a PRP of any batch run here, so ce has no log of it. "
        "Known PRPs: PRP-7.1.1, PRP-7.1.2.\n"
    )
    other = ce(failing_batch, monkeypatch, capsys, "logs", "PRP-7.1.1", "--batch", "8")
    assert other.code == 2
    assert "No checkpoint for batch 8" in other.err
    assert ce(failing_batch, monkeypatch, capsys, "logs", "PRP-7.1.1", "--batch", "7").code == 0


def test_logs_follow_until_the_prp_finishes(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    waits = f"until [ -e {gate} ]; do sleep 0.1; done"
    specs = [
        Spec(
            id="PRP-7.1.1",
            title="Alpha",
            phases=[["echo before the gate", waits, "echo after the gate"], [write("a.txt", "a")]],
            files=["a.txt"],
        )
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    log = repo / ".ce" / "tmp" / "logs" / "PRP-7.1.1.log"
    run = _start(repo, "batch-exe", "--batch", "7")
    follow = None
    try:
        _wait_for(lambda: log.exists() and "before the gate" in log.read_text(encoding="utf-8"))
        follow = _start(repo, "logs", "PRP-7.1.1", "-f")
        time.sleep(1.0)
        assert follow.poll() is None  # the PRP is still working: it keeps following
        gate.touch()
        out, err = follow.communicate(timeout=120)
        ran = run.communicate(timeout=120)
        assert run.returncode == 0, ran
    finally:
        for child in (run, follow):
            if child is not None and child.poll() is None:
                child.kill()
                child.communicate()
    assert follow.returncode == 0, err
    assert out.index("before the gate") < out.index("after the gate")
    assert "[ce] validation L4: passed\n" in out  # written after it started following


def _start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ce", *args],
        cwd=repo,
        env=CHILD_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: object, seconds: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


CLASH = (
    "bash -c \"if [ -e a.txt ] && [ -e b.txt ]; then echo 'Error: a.txt and b.txt clash'; "
    'exit 1; fi"'
)


def test_a_failed_check_of_the_merged_tree_is_in_the_prps_log_and_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Alpha and Bravo each pass alone; merged together their tree fails L3."""
    specs = [
        Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(id="PRP-7.1.2", title="Bravo", phases=[["sleep 1", write("b.txt", "b")]]),
    ]
    quoted = "'" * 3 + CLASH + "'" * 3  # a TOML literal string holding both kinds of quote
    config = f"executor = 'script'\n[monitor]\npoll_seconds = 0.2\n[validate]\nlevel3 = {quoted}\n"
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--continue-on-error")

    assert result.code == 1
    assert f"  PRP-7.1.2: ⚠ merged L3 failed: `{CLASH}` exited 1\n" in result.out
    assert "        Error: a.txt and b.txt clash\n" in result.out
    log = ce(repo, monkeypatch, capsys, "logs", "PRP-7.1.2").out
    assert "[ce] validation L3: passed\n" in log  # its branch alone
    assert f"[ce] validation merged L3: failed: `{CLASH}` exited 1\n" in log


def test_logs_names_at_most_twenty_known_prps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", [])
    logs = repo / ".ce" / "tmp" / "logs"
    logs.mkdir(parents=True)
    for n in range(1, 26):
        (logs / f"PRP-1.{n}.log").write_text("[ce] attempt 1\n", encoding="utf-8")

    unknown = ce(repo, monkeypatch, capsys, "logs", "PRP-2.1")

    assert unknown.code == 2
    names = ", ".join(f"PRP-1.{n}" for n in range(1, 21))
    assert unknown.err.endswith(f"Known PRPs: {names} and 5 more.\n")
    assert ce(repo, monkeypatch, capsys, "logs", "1.25").out == "[ce] attempt 1\n"
