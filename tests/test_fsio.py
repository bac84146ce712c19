"""The one atomic writer and the one log appender."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ce.fsio import append_log, write_atomic


def test_writes_text_and_bytes_creating_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "run.sh"
    target.write_text("old\n")
    target.chmod(0o751)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o7777 == 0o751


def test_a_full_disk_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoint.json"
    target.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


def test_the_temporary_file_can_live_elsewhere(tmp_path: Path) -> None:
    worktree, scratch = tmp_path / "worktree", tmp_path / "scratch"
    worktree.mkdir()
    write_atomic(worktree / "PRP.md", "done\n", temp_dir=scratch)
    assert [p.name for p in worktree.iterdir()] == ["PRP.md"]
    assert list(scratch.iterdir()) == []


def test_append_log_masks_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_TEST_API_TOKEN", "hunter2-secret-value")
    log = tmp_path / "logs" / "prp.log"
    first = append_log(log, "token hunter2-secret-value\n")
    second = append_log(log, "more\n")
    text = log.read_text()
    assert "hunter2-secret-value" not in text
    assert text.endswith("more\n")
    assert first + second == log.stat().st_size
