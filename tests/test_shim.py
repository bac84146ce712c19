"""The agent shim with real processes (no Ray): exit codes pass through, and no process of the
agent's tree outlives a stop, the launching process's death or the coordinator's silence."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ce.proc import ProcessError
from ce.proc.procfs import pid_alive, start_time
from ce.proc.shim import ShimChild, ShimError, ShimStatus, spawn_shim

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# Starts a tree that tries every way out: a background child, a grandchild orphaned to the
# shim, one that leaves the group with setsid, and one that also drops its environment (so
# only being re-parented to the shim gives it away). Each writes its pid to `pids`.
TREE = """\
sleep {m}1 & echo $! >> pids
(sleep {m}2 & echo $! >> pids)
setsid sleep {m}3 & echo $! >> pids
(setsid env -i sleep {m}4 & echo $! >> pids)
echo started >> pids
sleep {m}5
"""


def marked(marker: str) -> list[int]:
    """The live `sleep` processes whose duration starts with `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        sleeping = len(words) > 1 and words[0].endswith(b"sleep")
        if sleeping and words[1].startswith(marker.encode()) and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def parent_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 2 :].split()[1])


def nice_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rfind(")") + 2 :].split()[16])


def marker_for(tmp_path: Path) -> str:
    """Sleep durations no other test's processes have: `9<digits>`."""
    return "9" + str(abs(hash(tmp_path)) % 10**6).zfill(6) + "."


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """Whatever a failed test left running: its shims stopped, its marked sleeps killed."""
    yield
    for status in tmp_path.rglob("status.json"):
        with contextlib.suppress(ShimError, ProcessError):
            ShimChild.attach(status, status.with_name("agent.log"), timeout=0).stop(grace=0)
    for pid in marked(marker_for(tmp_path)):
        os.kill(pid, signal.SIGKILL)


def shim(tmp_path: Path, script: str, **kwargs: object) -> ShimChild:
    return spawn_shim(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=dict(os.environ),
        status_path=tmp_path / "run" / "status.json",
        log_path=tmp_path / "run" / "agent.log",
        **kwargs,  # type: ignore[arg-type]
    )


def start_tree(tmp_path: Path, **kwargs: object) -> tuple[ShimChild, str, list[int]]:
    marker = marker_for(tmp_path)
    child = shim(tmp_path, TREE.format(m=marker), **kwargs)
    pids_file = tmp_path / "pids"
    assert eventually(lambda: pids_file.exists() and "started" in pids_file.read_text())
    pids = [int(word) for word in pids_file.read_text().split() if word.isdigit()]
    assert len(pids) == 4
    assert eventually(lambda: len(marked(marker)) == 5)
    return child, marker, pids


def status(tmp_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp_path / "run" / "status.json").read_text())
    return data


@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", -9), ("kill -TERM $$", -15)],
)
def test_the_agents_exit_code_passes_through(tmp_path: Path, script: str, code: int) -> None:
    child = shim(tmp_path, script)
    assert child.wait(20) == code
    assert child.stopped is None
    record = status(tmp_path)
    assert record["returncode"] == code and record["stopped"] is None
    assert record["agent_pid"] == record["pgid"] == child.pid


def test_exit_codes_of_the_agents_children_pass_through_too(tmp_path: Path) -> None:
    # With SIGCHLD ignored (Ray's own subreaper option) the inner code would read as 0.
    child = shim(tmp_path, "bash -c 'exit 3'; echo inner=$?; git --version >/dev/null; exit 4")
    assert child.wait(20) == 4
    assert "inner=3" in (tmp_path / "run" / "agent.log").read_text()


def test_the_shim_exits_with_the_agents_code(tmp_path: Path) -> None:
    """Run by hand from a subreaper, the detached shim is re-parented to it: its status."""
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        from ce.proc.stopping import become_subreaper
        become_subreaper()
        codes = []
        for agent in ("exit 5", "kill -TERM $$"):
            subprocess.run(
                [sys.executable, "-m", "ce.proc.shim", "--status", "s.json", "--log", "a.log",
                 "--", "bash", "-c", agent], check=True)
            codes.append(os.waitstatus_to_exitcode(os.wait()[1]))
        print(codes)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[5, 143]", done.stderr


def test_stop_ends_the_whole_tree(tmp_path: Path) -> None:
    child, marker, pids = start_tree(tmp_path, grace=2.0)
    assert parent_of(child.shim_pid) != os.getpid()  # detached
    assert child.poll() is None
    assert child.stop() == -signal.SIGTERM
    assert child.stopped == "signal"
    assert marked(marker) == [] and not any(pid_alive(pid) for pid in pids)
    assert child.stop() == -signal.SIGTERM  # idempotent


def test_what_ignores_sigterm_is_killed_after_the_stops_grace(tmp_path: Path) -> None:
    marker = marker_for(tmp_path)
    child = shim(tmp_path, f"trap '' TERM; echo ready > ready; sleep {marker}1; true", grace=60)
    assert eventually((tmp_path / "ready").exists)
    started = time.monotonic()
    assert child.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5
    assert marked(marker) == []


def test_an_agent_that_ends_leaves_nothing_running(tmp_path: Path) -> None:
    marker = marker_for(tmp_path)
    child = shim(tmp_path, f"setsid sleep {marker}1 & sleep {marker}2 & exit 7", grace=1.0)
    assert child.wait(20) == 7
    assert marked(marker) == []


WORKER = """\
import os, sys, time
from pathlib import Path
from ce.proc.shim import spawn_shim
from ce.proc.stopping import become_subreaper
become_subreaper()  # even a worker that is a subreaper does not get the shim back
tmp = Path(sys.argv[1])
child = spawn_shim(["bash", "-c", sys.argv[2]], cwd=tmp, env=dict(os.environ),
    status_path=tmp / "run" / "status.json", log_path=tmp / "run" / "agent.log",
    watch_pid=os.getpid(), grace=1.0)
print(child.shim_pid, flush=True)
time.sleep(1000)
"""


def test_the_tree_is_stopped_when_the_launching_worker_is_killed(tmp_path: Path) -> None:
    marker = marker_for(tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), TREE.format(m=marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    try:
        shim_pid = int(worker.stdout.readline())
        assert eventually(lambda: len(marked(marker)) == 5)
        assert parent_of(shim_pid) != worker.pid
    finally:
        worker.kill()
        worker.wait()
        worker.stdout.close()
    child = ShimChild.attach(tmp_path / "run" / "status.json", tmp_path / "run" / "agent.log")
    assert child.wait(8) == -signal.SIGTERM
    assert child.stopped == "worker-gone"
    assert marked(marker) == []


def test_the_tree_is_stopped_when_the_heartbeat_goes_stale(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    child, marker, _ = start_tree(tmp_path, heartbeat=beat, heartbeat_seconds=1.0, grace=1.0)
    for _ in range(8):  # beating: it runs on
        time.sleep(0.25)
        beat.touch()
    assert child.poll() is None
    started = time.monotonic()
    assert child.wait(10) == -signal.SIGTERM
    assert 0.5 < time.monotonic() - started < 5
    assert child.stopped == "coordinator-gone"
    assert marked(marker) == []
    assert "coordinator-gone" in (tmp_path / "run" / "agent.log").read_text()


ATTACH = """\
import sys
from pathlib import Path
from ce.proc.shim import ShimChild
child = ShimChild.attach(Path(sys.argv[1]), Path(sys.argv[2]))
print(child.pid, child.poll(), child.stop(grace=1.0), child.stopped)
"""


def test_another_process_attaches_and_stops_it(tmp_path: Path) -> None:
    child, marker, _ = start_tree(tmp_path, grace=1.0)
    done = subprocess.run(
        [sys.executable, "-c", ATTACH, str(child.status_path), str(child.log_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split() == [str(child.pid), "None", "-15", "signal"], done.stderr
    assert marked(marker) == []
    assert child.poll() == -signal.SIGTERM and child.stopped == "signal"


def test_a_killed_shim_is_taken_over_by_the_next_poll(tmp_path: Path) -> None:
    child, marker, _ = start_tree(tmp_path)
    os.kill(child.shim_pid, signal.SIGKILL)
    assert eventually(lambda: child.poll() is not None)
    assert child.returncode == -signal.SIGKILL and child.stopped == "shim-gone"
    # All but the one that left both the group and its environment: only the shim knew it.
    assert eventually(lambda: len(marked(marker)) == 1)
    (escaped,) = marked(f"{marker}4")
    os.kill(escaped, signal.SIGKILL)
    assert status(tmp_path)["stopped"] == "shim-gone"


def test_an_agent_that_cannot_start_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError) as caught:
        spawn_shim(
            [str(tmp_path / "missing")],
            cwd=tmp_path,
            env=dict(os.environ),
            status_path=tmp_path / "status.json",
            log_path=tmp_path / "agent.log",
        )
    assert caught.value.returncode == 127
    assert "missing" in str(caught.value)


def test_the_agent_runs_where_and_how_it_is_told(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    child = spawn_shim(
        ["bash", "-c", 'pwd; echo "$GREETING"; echo "$CE_RUN_TOKEN"; echo err >&2'],
        cwd=tmp_path / "work",
        env={**os.environ, "GREETING": "hello"},
        status_path=tmp_path / "status.json",
        log_path=tmp_path / "agent.log",
    )
    assert child.wait(20) == 0
    lines = (tmp_path / "agent.log").read_text().splitlines()
    assert lines[:2] == [str(tmp_path / "work"), "hello"]
    assert lines[2] == json.loads((tmp_path / "status.json").read_text())["token"]
    assert lines[3] == "err"


def test_a_shim_that_cannot_write_its_status_fails_at_once(tmp_path: Path) -> None:
    """Its launcher exits 1 (spawn_shim: ShimError with the log) instead of a wait for nothing."""
    status = tmp_path / "missing" / "status.json"
    argv = ["--status", str(status), "--log", "a.log", "--", "true"]
    done = subprocess.run(
        [sys.executable, "-m", "ce.proc.shim", *argv],
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1
    assert "FileNotFoundError" in (tmp_path / "a.log").read_text()


def test_a_shim_that_never_starts_its_agent_is_told_to_stop(tmp_path: Path) -> None:
    stuck = subprocess.Popen(["sleep", "60"])  # stands in for a shim stuck before the agent
    try:
        record = ShimStatus(shim_pid=stuck.pid, shim_started=start_time(stuck.pid))
        record.write(tmp_path / "status.json")
        with pytest.raises(ShimError, match=r"no agent started under the shim in 0\.2 s"):
            ShimChild.attach(tmp_path / "status.json", tmp_path / "agent.log", timeout=0.2)
        assert stuck.wait(10) == -signal.SIGTERM
    finally:
        stuck.kill()
        stuck.wait()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--status", "s.json", "--log", "a.log", "true"], "usage: python -m ce.proc.shim"),
        (["--status", "s.json", "--log", "a.log", "--"], "no command after --"),
        (["--status", "s.json", "--log", "a.log", "--heartbeat", "b", "--", "true"], "> 0"),
    ],
)
def test_the_command_line_says_what_is_wrong(tmp_path: Path, args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ce.proc.shim", *args],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and says in done.stderr
    assert not (tmp_path / "s.json").exists()
