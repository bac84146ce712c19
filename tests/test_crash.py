"""Crash safety: SIGKILL at every journal write (and at random moments), then --resume.

Every interrupted run must end exactly as an uninterrupted one: the same target tree, each PRP
merged once, no phase commit twice, and nothing left behind (worktree, branch, lock, process).
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from batchkit import Spec, git, killed_under_index_lock, make_batch_repo, write

CONFIG = """\
executor = "script"
max_parallel = 4
[monitor]
poll_seconds = 0.2
grace_seconds = 0.5
"""

# Six PRPs, three stages, one serialized file conflict. Blocks are idempotent (an agent that
# resumes a half-done phase sees its own partial work; a script re-running it must agree).
SPECS = [
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
        phases=[[write("c.txt", "c")], ["grep -qx C shared.txt || echo C >> shared.txt"]],
        files=["c.txt", "shared.txt"],
        order=2,
    ),
    Spec(
        id="PRP-7.2.3",
        title="Delta",
        deps=["PRP-7.1.1"],
        phases=[[write("d.txt", "d")], [write("d2.txt", "dd")]],
        files=["d.txt", "d2.txt"],
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
        title="Fox",
        deps=["PRP-7.1.1"],
        phases=[[write("f.txt", "f")]],
        files=["f.txt"],
    ),
]
PHASES = {spec.id: len(spec.phases) for spec in SPECS}


def ce(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet", *args],
        cwd=repo,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def finish(repo: Path, *extra: str) -> int:
    """Resume until the batch is done; returns how many runs it took."""
    for attempt in range(1, 6):
        checkpoint = repo / ".ce" / "tmp" / "batch-execution-7.json"
        done = ce(repo, "--resume", *extra) if checkpoint.exists() else ce(repo, *extra)
        if done.returncode == 0:
            return attempt
    raise AssertionError(f"not finished after 5 runs:\n{done.stdout}\n{done.stderr}")


def assert_exact(repo: Path, reference_tree: str) -> None:
    assert git(repo, "rev-parse", "main^{tree}") == reference_tree
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    for prp_id, phases in PHASES.items():
        assert sum(s.startswith(f"Merge {prp_id}:") for s in subjects) == 1, prp_id
        for n in range(1, phases + 1):
            assert sum(s.startswith(f"{prp_id}: Phase {n} - ") for s in subjects) == 1
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert_unlocked(repo)
    assert not processes_in(repo.parent)


def assert_unlocked(repo: Path) -> None:
    lock = repo / ".git" / "ce-batch.lock"
    if lock.exists():
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held


def processes_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = (entry / "cwd").readlink()
            except OSError:
                continue
            if directory == cwd or directory in cwd.parents:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch's repository, built once: each run gets a copy of it (see `copy_of`)."""
    return make_batch_repo(tmp_path_factory.mktemp("template") / "repo", SPECS, config=CONFIG)


def copy_of(template: Path, repo: Path) -> Path:
    """A fresh repository at `repo`, the template's files and history copied as they are:
    cheaper than the git commands that build it, for the ~70 runs below."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, repo, symlinks=True)
    return repo


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, template: Path) -> tuple[str, int]:
    """The uninterrupted run: its target tree, and how many journal writes it made."""
    repo = copy_of(template, tmp_path_factory.mktemp("reference") / "repo")
    done = ce(repo)
    assert done.returncode == 0, done.stderr
    journal = repo / ".ce" / "tmp" / "batch-7.journal.jsonl"
    return git(repo, "rev-parse", "main^{tree}"), len(journal.read_text().splitlines())


def kill_at(template: Path, base: Path, k: int, reference_tree: str) -> bool:
    """Kill at the k-th journal write, then resume. False when the run ended before k."""
    repo = copy_of(template, base / f"k{k}" / "repo")
    killed = ce(repo, env={"CE_TEST_KILL_AT": str(k)})
    if killed.returncode == 0:
        return False
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finish(repo)
    assert_exact(repo, reference_tree)
    return True


def test_sigkill_at_every_journal_write_then_resume(
    tmp_path: Path,
    template: Path,
    reference: tuple[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree, writes = reference
    # A kill point's two runs wait on git and on polls for about a third of their time: one
    # more of them than there are cores keeps the cores busy.
    with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
        survived = list(
            pool.map(lambda k: kill_at(template, tmp_path, k, tree), range(1, writes + 1))
        )
    with capsys.disabled():
        print(f"\nkill points survived: {sum(survived)} of {writes} journal writes")
    assert sum(survived) >= writes - 2  # the last writes may come after the batch is merged


@pytest.mark.parametrize("schedule", ["stages", "eager"])
def test_sigkill_at_random_moments_then_resume(
    tmp_path: Path, template: Path, reference: tuple[str, int], schedule: str
) -> None:
    tree, _ = reference
    rng = random.Random(7)
    for n in range(4):
        repo = copy_of(template, tmp_path / f"r{n}" / "repo")
        command = ["batch-exe", "--batch", "7", "--quiet", "--schedule", schedule]
        child = subprocess.Popen(
            [sys.executable, "-m", "ce", *command],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.5))
        child.kill()
        child.wait()
        finish(repo, "--schedule", schedule)
        assert_exact(repo, tree)


def test_ctrl_c_stops_agents_saves_state_and_resumes(
    tmp_path: Path, reference: tuple[str, int]
) -> None:
    slept = tmp_path / "fox-slept"  # Fox sleeps in the first run only: the resumed one is quick
    specs = [
        *SPECS[:-1],
        Spec(
            id="PRP-7.2.4",
            title="Fox",
            deps=["PRP-7.1.1"],
            phases=[[f"[ -e {slept} ] || {{ touch {slept}; sleep 30; }}"], [write("f.txt", "f")]],
            files=["f.txt"],
        ),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=CONFIG)
    child = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: any("sleep" in cmdline(pid) for pid in processes_in(tmp_path)))
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert "ce batch-exe --batch 7 --resume" in err
    assert not [pid for pid in processes_in(tmp_path) if "sleep" in cmdline(pid)]
    checkpoint = (repo / ".ce/tmp/batch-execution-7.json").read_text()
    assert '"status": "INTERRUPTED"' in checkpoint
    done = ce(repo, "--resume")
    assert done.returncode == 0, done.stderr
    merged = [s for s in git(repo, "log", "--format=%s", "main").splitlines() if "Merge " in s]
    assert sorted(s.split(":")[0] for s in merged) == sorted(f"Merge {s.id}" for s in specs)
    assert_unlocked(repo)


def test_second_invocation_is_refused_while_one_runs(tmp_path: Path) -> None:
    go = tmp_path / "go"  # the first run's agent waits for it: running until the test says
    wait = f"until [ -e {go} ]; do sleep 0.05; done"
    specs = [
        Spec(id="PRP-7.1.1", title="Slow", phases=[[wait, write("s.txt", "s")]], files=["s.txt"])
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=CONFIG)
    first = subprocess.Popen(
        [sys.executable, "-m", "ce", "batch-exe", "--batch", "7", "--quiet"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for((repo / ".ce/tmp/batch-execution-7.json").exists)
        second = ce(repo)
    finally:
        go.touch()
    assert second.returncode == 2
    assert "batch 7 (pid" in second.stderr and "is already running" in second.stderr
    assert first.wait(timeout=60) == 0


def test_resume_continues_on_top_of_a_user_commit(tmp_path: Path, template: Path) -> None:
    repo = copy_of(template, tmp_path / "repo")
    killed = ce(repo, env={"CE_TEST_KILL_AT": "20"})
    assert killed.returncode == -signal.SIGKILL
    (repo / "user.txt").write_text("mine\n")
    git(repo, "add", "user.txt")
    git(repo, "commit", "-q", "-m", "user work meanwhile")
    assert finish(repo) >= 1
    assert (repo / "user.txt").read_text() == "mine\n"
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    assert "user work meanwhile" in subjects
    assert sum(s.startswith("Merge PRP-") for s in subjects) == len(SPECS)
    assert_unlocked(repo)


def wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_run_killed_while_fast_forwarding_the_checkout_resumes(tmp_path: Path) -> None:
    """kill -9 after the target moved and ce's own files were written, before the index was:
    the checkout looks changed (`.gitignore` modified), yet the next run finishes the fast
    forward first and goes on (found by the random kill trials)."""
    repo = make_batch_repo(tmp_path / "repo", SPECS, config=CONFIG)
    old = git(repo, "rev-parse", "main")
    (repo / ".gitignore").write_text(".ce/tmp/\n")
    blob = git(repo, "hash-object", "-w", ".gitignore")
    tree = subprocess.run(
        ["git", "mktree"],
        cwd=repo,
        input=git(repo, "ls-tree", "main") + f"\n100644 blob {blob}\t.gitignore\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    new = git(repo, "commit-tree", tree, "-p", old, "-m", "ce: ignore .ce/tmp/")
    killed_under_index_lock(repo, old, new)
    git(repo, "update-ref", "refs/heads/main", new, old)
    assert finish(repo) == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
