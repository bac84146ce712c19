"""The environment, not the user, is wrong (issue 13 case 16): a full or read-only state
directory, no file descriptors left, a damaged journal or checkpoint. Each is a clear error
naming the file and what to do — never a traceback — and nothing is left half-written."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce.core.errors import CeError
from ce.git import GitError, Repo
from clikit import CHILD_ENV, ce

SPECS = [Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"])]
BATCH = ("batch-exe", "--batch", "7")
CE = (sys.executable, "-m", "ce")


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A repository whose `.ce/tmp` is a 64 KiB file system of its own."""
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    state = repo / ".ce" / "tmp"
    state.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(state)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("needs to mount a small tmpfs (root)")
    try:
        yield repo, state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def run_ce(repo: Path, *args: str, nofile: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return subprocess.run(
        [sys.executable, "-m", "ce", *args],
        cwd=repo,
        env=CHILD_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )


def assert_clear(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in done.stderr and "bug in ce" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_a_full_state_directory_is_a_clear_error_and_nothing_is_left(
    small_state_dir: tuple[Path, Path],
) -> None:
    repo, state = small_state_dir
    fd = os.open(state / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
    finally:
        os.close(fd)
    done = run_ce(repo, *BATCH)
    assert done.returncode == 2
    assert_clear(done, "No space left on device", "free some space")
    assert sorted(p.name for p in state.iterdir()) == ["filler"]  # no empty temp file
    assert "prp-7-1-1" not in git(repo, "branch")  # nothing started


def test_a_read_only_state_directory_is_a_clear_error(small_state_dir: tuple[Path, Path]) -> None:
    repo, state = small_state_dir
    subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
    done = run_ce(repo, *BATCH)
    assert done.returncode == 2
    assert_clear(done, "Read-only file system", "make it writable")


def test_no_file_descriptors_left_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    done = run_ce(repo, *BATCH, nofile=12)
    assert done.returncode in (1, 2)
    assert_clear(done)
    assert "Too many open files" in done.stderr or "ulimit" in done.stderr, done.stderr


def test_a_journal_with_invalid_utf8_is_read_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    state = repo / ".ce" / "tmp"
    state.mkdir(parents=True, exist_ok=True)
    checkpoint = {"version": 1, "batch_id": "7", "status": "INTERRUPTED", "stages": {}}
    (state / "batch-execution-7.json").write_text(json.dumps(checkpoint))
    (state / "batch-7.journal.jsonl").write_bytes(b'{"fact": "start"}\n\xff\xfe garbage\n')
    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err


def test_a_checkpoint_with_an_unknown_state_names_the_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", SPECS)
    state = repo / ".ce" / "tmp"
    state.mkdir(parents=True, exist_ok=True)
    record = {"prp_id": "PRP-7.1.1", "state": "exploded", "branch": "b", "worktree": "w"}
    stage = {"status": "IN_PROGRESS", "prps": ["PRP-7.1.1"], "results": {"PRP-7.1.1": record}}
    checkpoint = {"version": 1, "batch_id": "7", "status": "INTERRUPTED", "stages": {"1": stage}}
    (state / "batch-execution-7.json").write_text(json.dumps(checkpoint))
    result = ce(repo, monkeypatch, capsys, *BATCH, "--resume")
    assert result.code == 2
    assert "batch-execution-7.json" in result.err
    assert "stages.1.results.PRP-7.1.1.state" in result.err
    assert "Traceback" not in result.err


def test_a_directory_that_vanished_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    """`ce` started in a directory removed since (the shell's cwd), and a git command whose
    checkout is gone: exit 2, the directory named, no traceback."""
    gone = tmp_path / "gone"
    gone.mkdir()
    for args in (("status",), BATCH):
        done = subprocess.run(
            ["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$@"', "sh", *CE, *args],
            env=CHILD_ENV,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert_clear(done, f"the current directory {gone} does not exist")
        gone.mkdir()
    with pytest.raises(CeError, match=f"{gone / 'nowhere'} does not exist") as caught:
        Repo(gone / "nowhere").has_changes()
    assert isinstance(caught.value, GitError)  # and still a failed git command to its callers


def test_a_worktree_removed_while_its_prp_ran_fails_it_naming_the_directory(
    tmp_path: Path,
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="Gone", phases=[[write("a.txt", "a"), 'rm -rf "$PWD"']])]
    repo = make_batch_repo(tmp_path / "repo", specs)
    done = run_ce(repo, *BATCH, "--json")
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["prps"]["PRP-7.1.1"]["error"]
    assert f"{tmp_path / 'repo-prp-7.1.1'} does not exist" in error
    assert "bug in ce" not in error and "exit code 127" not in error
