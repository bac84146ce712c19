"""Secrets from the environment are masked in everything ce writes."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from batchkit import CONFIG, Spec, git, make_batch_repo, write
from ce import proc
from ce.cli import run
from ce.core.events import BatchStarted, Notice, NoticeLevel, PrpInfo
from ce.fsio import append_log, write_atomic
from ce.run.state import Journal
from ce.secrets import (
    MASK,
    LogFilter,
    Masker,
    log_filter,
    mask,
    mask_data,
    masked_json,
    masker,
    secret_values,
)
from ce.ui.board import Board
from ce.ui.live import LiveBoard, progress_for

SECRET = "s3cr3t-VALUE-4242"
OTHER = "p@ss:'wörd\"&<x>"  # quotes, non-ASCII and markup: escaped differently by each format


def test_secret_names_and_the_minimum_length() -> None:
    environ = {
        "OPENAI_API_KEY": SECRET,
        "github_token": "ghp_abcdefgh",
        "MY_SECRET": "short",  # too short to mask
        "DB_PASSWORD": "line-one-x\r\nline-two-y",  # each line of a PEM-like value
        "KEYBOARD": "us-intl-layout",  # *KEY*: masked too, harmlessly
        "PATH": "/usr/bin:/bin",
        "EDITOR": "vim-is-long",
    }
    assert secret_values(environ) == (
        SECRET,
        "us-intl-layout",
        "ghp_abcdefgh",
        "line-one-x",
        "line-two-y",
    )


def test_text_and_nested_data() -> None:
    m = masker({"A_TOKEN": SECRET, "B_PASSWORD": OTHER, "C_KEY": SECRET + "-longer"})
    assert m.text(f"x {SECRET}-longer y {SECRET} {OTHER}") == f"x {MASK} y {MASK} {MASK}"
    event = BatchStarted(
        batch_id="1",
        executor="script",
        stages=(("PRP-1",),),
        prps=(
            PrpInfo(
                id="PRP-1", title=SECRET, stage=1, model="m", phases=1, branch="b", worktree=""
            ),
        ),
    )
    masked = m.data(event)
    assert masked.prps[0].title == MASK
    assert masked.at == event.at
    notice = Notice(level=NoticeLevel.INFO, message=OTHER)
    data = {"k": [1, None, (SECRET, 2.5)], SECRET: {"n": notice}}
    assert m.data(data) == {
        "k": [1, None, (MASK, 2.5)],
        MASK: {"n": Notice(level=NoticeLevel.INFO, message=MASK, at=notice.at)},
    }


def test_no_secret_no_work() -> None:
    empty = Masker(())
    data = {"a": ["b"]}
    assert not empty
    assert empty.data(data) is data
    assert empty.text("abc") == "abc"
    assert log_filter({"PATH": "/bin"}) is None


@settings(max_examples=80, deadline=None)
@given(
    prefix=st.binary(max_size=40),
    middle=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=30), max_size=12),
)
def test_log_filter_masks_secrets_split_across_chunks(
    prefix: bytes, middle: bytes, cuts: list[int]
) -> None:
    m = masker({"X_TOKEN": SECRET, "Y_KEY": OTHER})
    stream = prefix + SECRET.encode() + middle + OTHER.encode() + SECRET.encode()[:5]
    log_filter_ = LogFilter(m)
    out, position = b"", 0
    for size in cuts:
        out += log_filter_.feed(stream[position : position + size])
        position += size
    out += log_filter_.feed(stream[position:]) + log_filter_.end()
    assert out == m.bytes(stream)
    assert SECRET.encode() not in out
    assert OTHER.encode() not in out


def test_the_key_half_of_gits_config_pairs_is_no_secret() -> None:
    environ = {"GIT_CONFIG_KEY_0": "maintenance.auto", "GIT_CONFIG_KEYS": "not-git's-own"}
    assert secret_values(environ) == ("not-git's-own",)


def test_the_log_filter_holds_back_only_what_may_begin_a_secret() -> None:
    log_filter_ = LogFilter(masker({"X_TOKEN": SECRET}))
    assert log_filter_.feed(b"cost=0.1 in=100 out=10\n") == b"cost=0.1 in=100 out=10\n"
    assert log_filter_.feed(b"then s3cr") == b"then "  # the start of SECRET, maybe
    assert log_filter_.feed(b"atch\n") == b"s3cratch\n"
    assert log_filter_.feed(SECRET[:-1].encode()) == b""
    assert log_filter_.end() == SECRET[:-1].encode()


def test_ces_own_lines_fall_between_a_masked_childs_lines(tmp_path: Path) -> None:
    """A child's line waits for nobody while its secret filter runs: ce's notice written meanwhile
    (a stall warning) lands after it, not in its middle (an agent's JSON line split in two)."""
    log, started = tmp_path / "child.log", tmp_path / "started"
    env = {"PATH": "/usr/bin:/bin", "MY_API_KEY": SECRET}
    script = f"echo 'fake-agent session=s-0 cost=0.1 in=100 out=10'; touch {started}; sleep 2"
    child = proc.spawn_group(
        ["bash", "-c", script], cwd=tmp_path, env=env, log_path=log, output_filter=log_filter(env)
    )
    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # the copier's turn
    append_log(log, "[ce] WARNING: no progress\n")
    assert child.wait(10) == 0
    proc.stop_group(child, grace=1)
    assert log.read_text(encoding="utf-8").splitlines() == [
        "fake-agent session=s-0 cost=0.1 in=100 out=10",
        "[ce] WARNING: no progress",
    ]


def test_a_childs_output_is_masked_on_its_way_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    env = {"PATH": "/usr/bin:/bin", "MY_API_KEY": SECRET}
    program = (
        "import os, sys, time\n"
        "value = os.environ['MY_API_KEY']\n"
        "sys.stdout.write(value[:4]); sys.stdout.flush(); time.sleep(0.05)\n"
        "print(value[4:] + ' then ' + value, flush=True)\n"
        "print('on stderr ' + value, file=sys.stderr)\n"
    )
    child = proc.spawn_group(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=env,
        log_path=log,
        output_filter=log_filter(env),
    )
    assert child.wait(10) == 0
    proc.stop_group(child, grace=1)
    text = log.read_text(encoding="utf-8")
    assert SECRET not in text
    assert text.splitlines() == [f"{MASK} then {MASK}", f"on stderr {MASK}"]


def test_checkpoint_and_journal_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_TEST_SECRET_TOKEN", OTHER)
    write_atomic(tmp_path / "c.json", masked_json({"error": f"failed: {OTHER}", "n": 3}))
    journal = Journal(tmp_path / "j.jsonl")
    journal.fact("exited", prp="PRP-1", note=OTHER)
    journal.close()
    assert json.loads((tmp_path / "c.json").read_text()) == {"error": f"failed: {MASK}", "n": 3}
    assert Journal.read(tmp_path / "j.jsonl")[0]["note"] == MASK
    assert mask(f"a{OTHER}") == f"a{MASK}"
    assert mask_data([OTHER]) == [MASK]


def _files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_secret_an_executor_prints_is_masked_in_every_file_ce_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    leak = 'echo "the token is $CE_TEST_API_TOKEN"'
    specs = [
        Spec(
            id="PRP-7.1",
            title="Prints",
            phases=[[leak, 'printf %s "$CE_TEST_API_TOKEN" | sha256sum | cut -c1-64 > a.txt']],
            files=["a.txt"],
        ),
        Spec(
            id="PRP-7.2",
            title="Fails with it",
            phases=[[leak, write("b.txt", "b")]],
            files=["b.txt"],
            extra={"validation": "{level3: \"bash -c 'echo leaked $CE_TEST_API_TOKEN; exit 1'\"}"},
        ),
    ]
    config = (
        "setup = \"bash -c 'echo setup sees $CE_TEST_API_TOKEN'\"\n"
        + CONFIG
        + "[hooks]\npost_batch = \"bash -c 'echo hook sees $CE_TEST_API_TOKEN'\"\n"
    )
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    monkeypatch.setenv("CE_TEST_API_TOKEN", SECRET)
    monkeypatch.chdir(repo)

    code = run(["batch-exe", "--batch", "7", "--json", "--continue-on-error"])

    out = capsys.readouterr()
    assert code == 1  # PRP-7.2 fails its validation, with the secret in the output
    written = _files_under(repo / ".ce" / "tmp")
    names = {path.name for path in written}
    assert {"PRP-7.1.log", "PRP-7.2.log", "hooks.log", "batch-execution-7.json"} <= names
    assert {"batch-7.journal.jsonl", "batch-7-report.json", "batch-7-report.html"} <= names
    for path in written:
        assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
    assert SECRET not in out.out + out.err
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-7.1.log").read_text(encoding="utf-8")
    assert f"the token is {MASK}" in log
    assert f"setup sees {MASK}" in log
    summary = json.loads(out.out)
    l3 = summary["prps"]["PRP-7.2"]["validation_results"]["level_3"]
    assert f"leaked {MASK}" in l3["errors"]
    # Agents' environments are passed through unchanged: the real value reached them.
    assert git(repo, "show", "main:a.txt") == hashlib.sha256(SECRET.encode()).hexdigest()


def test_progress_is_masked_on_the_board_and_in_plain_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CE_TEST_SECRET", SECRET)
    stream = io.StringIO()
    plain = progress_for(stream, quiet=False, plain=True)
    live = LiveBoard(Board(), Console(file=io.StringIO(), force_terminal=True, width=100))
    for progress in (plain, live):
        progress(Notice(level=NoticeLevel.WARNING, prp="PRP-1", message=f"saw {SECRET}"))
        assert [n.message for n in progress.board.state.notices] == [f"saw {MASK}"]
    assert stream.getvalue().endswith(f"warning: PRP-1: saw {MASK}\n")
