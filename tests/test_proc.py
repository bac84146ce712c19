"""proc: commands run to completion, and supervised process groups, with real processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ce.core.errors import CeFailure
from ce.proc import (
    Child,
    ProcessError,
    group_alive,
    kill_pgid,
    run,
    spawn_group,
    stop_group,
)

PY = sys.executable


def _wait_for(predicate: object, seconds: float = 5.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return True
    return stat.read_text().rpartition(")")[2].split()[0] != "Z"


def _assert_group_gone(pgid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def _spawn(tmp_path: Path, script: str) -> Child:
    return spawn_group(
        ["sh", "-c", script], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "child.log"
    )


def _log_line(child: Child, index: int) -> str:
    """Line `index` of the child's log, once it has been written."""
    assert _wait_for(lambda: len(child.log_path.read_text().splitlines()) > index)
    return child.log_path.read_text().splitlines()[index]


# -- run ---------------------------------------------------------------------------------------


def test_run_captures_stdout_and_stderr(tmp_path: Path) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr)"
    done = run([PY, "-c", script], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
    assert done.argv == (PY, "-c", script)


def test_run_passes_input_env_and_cwd(tmp_path: Path) -> None:
    script = "import os, sys; print(sys.stdin.read().upper(), os.environ['CE_X'], os.getcwd())"
    done = run([PY, "-c", script], cwd=tmp_path, env={**os.environ, "CE_X": "x"}, input="héllo")
    assert done.stdout == f"HÉLLO x {tmp_path}\n"


def test_run_closes_stdin_without_input() -> None:
    done = run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=10)
    assert done.stdout == "''\n"


def test_run_keeps_newlines_and_replaces_undecodable_bytes() -> None:
    script = "import sys; sys.stdout.buffer.write(b'a\\r\\nb\\xff\\n')"
    assert run([PY, "-c", script]).stdout == "a\r\nb\ufffd\n"


def test_run_failure_names_command_exit_code_and_stderr_tail() -> None:
    script = "import sys; sys.stderr.write(''.join(f'line {i}\\n' for i in range(50))); sys.exit(3)"
    with pytest.raises(ProcessError) as caught:
        run([PY, "-c", script])
    error = caught.value
    assert isinstance(error, CeFailure)
    assert (error.returncode, error.argv[0]) == (3, PY)
    message = str(error)
    assert "exit code 3" in message
    assert f"{PY} -c 'import sys;" in message  # shlex.join: copy-pasteable
    assert "line 49" in message
    assert "line 0\n" not in message  # only the tail


def test_run_unchecked_returns_the_failure() -> None:
    done = run([PY, "-c", "import sys; sys.exit(4)"], check=False)
    assert done.returncode == 4


def test_run_missing_executable_is_a_process_error() -> None:
    with pytest.raises(ProcessError) as caught:
        run(["ce-no-such-binary-xyz", "--flag"])
    assert caught.value.returncode == 127
    assert "ce-no-such-binary-xyz --flag" in str(caught.value)
    assert "could not start" in str(caught.value)


def test_run_timeout_kills_the_whole_group() -> None:
    # The shell prints its background child's pid, then both sleep past the timeout.
    started = time.monotonic()
    with pytest.raises(ProcessError) as caught:
        run(["sh", "-c", "sleep 30 & echo $!; sleep 30"], timeout=1.0)
    assert time.monotonic() - started < 10
    assert "timed out after 1s" in str(caught.value)
    assert caught.value.returncode == -signal.SIGKILL
    background = int(caught.value.stdout.strip())
    assert _wait_for(lambda: not _running(background))


# -- supervised groups -------------------------------------------------------------------------


def test_spawn_group_appends_output_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "prp.log"
    log.parent.mkdir()
    log.write_text("earlier run\n")
    child = spawn_group(
        ["sh", "-c", 'echo out; echo err >&2; pwd; echo "$CE_X"; cat'],
        cwd=tmp_path,
        env={**os.environ, "CE_X": "x"},
        log_path=log,
    )
    assert child.wait(10) == 0
    assert child.returncode == child.poll() == 0
    assert log.read_text() == f"earlier run\nout\nerr\n{tmp_path}\nx\n"  # cat saw no stdin
    assert os.getpgid(os.getpid()) != child.pgid
    stop_group(child)


def test_spawn_group_creates_the_log_directory(tmp_path: Path) -> None:
    log = tmp_path / "state" / "logs" / "prp.log"
    child = spawn_group(["true"], cwd=tmp_path, env=dict(os.environ), log_path=log)
    assert child.wait(10) == 0
    assert log.exists()


def test_spawn_group_missing_executable_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError):
        spawn_group(["ce-no-such-agent"], cwd=tmp_path, env={}, log_path=tmp_path / "x.log")


def test_child_is_its_own_group_leader(tmp_path: Path) -> None:
    child = _spawn(tmp_path, "sleep 30")
    try:
        assert child.pgid == child.pid == os.getpgid(child.pid)
        assert child.poll() is None
        assert child.wait(0.05) is None
        assert group_alive(child.pgid)
    finally:
        stop_group(child, grace=2)


def test_stop_group_kills_the_child_and_its_double_forked_grandchild(tmp_path: Path) -> None:
    # `( sleep & )` double-forks: the sleep is orphaned but stays in the group.
    child = _spawn(tmp_path, "(sleep 60 & echo $! ); sleep 60")
    grandchild = int(_log_line(child, 0))
    assert os.getpgid(grandchild) == child.pgid
    assert stop_group(child, grace=5) == -signal.SIGTERM
    _assert_group_gone(child.pgid)
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # reaped: no zombie left
    assert not group_alive(child.pgid)


def test_stop_group_kills_members_that_outlive_the_leader(tmp_path: Path) -> None:
    # The leader exits at once; its orphan ignores SIGTERM, so only SIGKILL ends it.
    # It prints its pid only once SIGTERM is ignored (which `exec` keeps).
    child = _spawn(tmp_path, "sh -c 'trap \"\" TERM; echo $$; exec sleep 60' &")
    orphan = int(_log_line(child, 0))
    assert child.wait(10) == 0
    assert group_alive(child.pgid)
    started = time.monotonic()
    assert stop_group(child, grace=0.3) == 0
    assert time.monotonic() - started >= 0.3
    assert not _running(orphan)
    _assert_group_gone(child.pgid)


def test_stop_group_sigkills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    child = spawn_group(
        [PY, "-c", script], cwd=tmp_path, env=dict(os.environ), log_path=tmp_path / "c.log"
    )
    assert _log_line(child, 0) == "ready"
    started = time.monotonic()
    assert stop_group(child, grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5
    _assert_group_gone(child.pgid)


def test_stop_group_is_idempotent(tmp_path: Path) -> None:
    child = _spawn(tmp_path, "sleep 60")
    assert stop_group(child, grace=2) == -signal.SIGTERM
    assert stop_group(child, grace=2) == -signal.SIGTERM
    assert child.poll() == -signal.SIGTERM


def test_kill_pgid_stops_a_group_recorded_by_an_earlier_run(tmp_path: Path) -> None:
    # An "earlier run": a shell that leaves a background sleep in its group and exits.
    done = run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $$ $!"])
    pgid, sleeper = (int(part) for part in done.stdout.split())
    assert group_alive(pgid)
    kill_pgid(pgid, grace=2)
    assert not _running(sleeper)
    assert not group_alive(pgid)
    kill_pgid(pgid, grace=2)  # a group that is gone is fine


def test_group_alive_of_a_group_that_never_existed() -> None:
    assert not group_alive(2**22 + 12345)  # above the default pid_max


# -- escapes (issue 13 case 12, I7) -------------------------------------------------------------

_ESCAPE = "setsid sh -c 'echo $$ > {pid}; exec sleep 1000' > /dev/null 2>&1 &"


def _escaped_pid(path: Path) -> int:
    assert _wait_for(lambda: path.is_file() and path.read_text().strip() != "")
    return int(path.read_text())


def test_stop_group_stops_what_left_the_group_with_setsid(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    child = _spawn(tmp_path, _ESCAPE.format(pid=pid_file) + " sleep 60")
    escaped = _escaped_pid(pid_file)
    assert os.getpgid(escaped) != child.pgid  # out of the group, for real
    stop_group(child, grace=2)
    assert _wait_for(lambda: not _running(escaped))


def test_stop_group_stops_a_double_forked_setsid_daemon(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    child = _spawn(tmp_path, f"( {_ESCAPE.format(pid=pid_file)} ); sleep 60")
    escaped = _escaped_pid(pid_file)
    stop_group(child, grace=2)
    assert _wait_for(lambda: not _running(escaped))


def test_a_command_is_judged_by_its_exit_not_by_its_pipes_closing(tmp_path: Path) -> None:
    """A check that exits 0 and leaves a daemon holding its stdout passes promptly."""
    pid_file = tmp_path / "pid"
    script = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 1000' & echo done; exit 0"
    started = time.monotonic()
    done = run(["sh", "-c", script], timeout=60, contain=True)
    assert time.monotonic() - started < 15
    assert (done.returncode, done.stdout) == (0, "done\n")
    assert _wait_for(lambda: not _running(_escaped_pid(pid_file)))


def test_contain_stops_a_setsid_daemon_that_closed_its_pipes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    run(["sh", "-c", _ESCAPE.format(pid=pid_file) + " sleep 0.5"], contain=True)
    assert _wait_for(lambda: not _running(_escaped_pid(pid_file)))


def test_run_feeds_input_to_a_command_slower_than_one_look() -> None:
    """`run` looks at the child every 0.1 s: input given once is written across the looks."""
    done = run(["sh", "-c", "sleep 0.5; cat"], input="slow input\n")
    assert done.stdout == "slow input\n"


def test_run_feeds_input_larger_than_a_pipe_to_a_command_slower_than_one_look() -> None:
    """More than the pipe holds, to a child that reads only after several looks: the rest is
    written after the first look too (subprocess forgets it when communicate is called again)."""
    data = "x" * (1 << 20)
    done = run(["sh", "-c", "sleep 0.5; wc -c"], input=data, timeout=30)
    assert done.stdout.strip() == str(len(data))
