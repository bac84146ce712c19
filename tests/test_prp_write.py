"""Writing a status back changes the status (and completion date) and nothing else."""

from __future__ import annotations

import io
import os
import stat
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ce.core.errors import CeError
from ce.prp.parse import parse_prp
from ce.prp.write import set_status, set_status_text

SAMPLES = Path(__file__).parent / "fixtures" / "prp-samples"
DAY = date(2026, 3, 4)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("PRP-*.md")), ids=lambda path: path.name)
def test_every_sample_changes_only_its_status_lines(path: Path) -> None:
    text = path.read_bytes().decode()
    old = parse_prp(path).status
    expected = text.replace(
        f"\nstatus: {old}\n", f"\nstatus: completed\ncompletion_date: {DAY}\n", 1
    )
    assert expected != text
    assert set_status_text(text, "completed", DAY) == expected
    assert set_status_text(text, "executed", None) == text.replace(
        f"\nstatus: {old}\n", "\nstatus: executed\n", 1
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (  # quoting style and comments are kept
            '---\nid: 1\nstatus: "planning"   # set by ce\ntitle: T\n---\n',
            '---\nid: 1\nstatus: "completed"   # set by ce\ncompletion_date: 2026-03-04\n'
            "title: T\n---\n",
        ),
        (
            "---\nstatus: 'planning'#x\n---\n",
            "---\nstatus: 'completed'#x\ncompletion_date: 2026-03-04\n---\n",
        ),
        (  # an existing completion date is replaced where it is, in its quotes
            "---\ncompletion_date: '2020-01-01' # old\ntitle: T\nstatus: planning\n---\nbody\n",
            "---\ncompletion_date: '2026-03-04' # old\ntitle: T\nstatus: completed\n---\nbody\n",
        ),
        (
            "---\nstatus: planning\ncompletion_date:\n---\n",
            "---\nstatus: completed\ncompletion_date: 2026-03-04\n---\n",
        ),
        (  # no status: it is added at the end of the frontmatter, the date after it
            "---\nprp_id: PRP-1\ntitle: T\n---\n# T\n",
            "---\nprp_id: PRP-1\ntitle: T\nstatus: completed\ncompletion_date: 2026-03-04\n"
            "---\n# T\n",
        ),
        (  # CRLF line endings, a BOM, no newline at the end of the file
            "\ufeff---\r\nprp_id: PRP-1\r\nstatus: new\r\n---\r\nbody\r\nend",
            "\ufeff---\r\nprp_id: PRP-1\r\nstatus: completed\r\ncompletion_date: 2026-03-04\r\n"
            "---\r\nbody\r\nend",
        ),
        (  # the key spelled as the parser accepts it
            "---\nStatus: Planning\n---\n",
            "---\nStatus: completed\ncompletion_date: 2026-03-04\n---\n",
        ),
        (
            '---\n"status": new\n---\n',
            '---\n"status": completed\ncompletion_date: 2026-03-04\n---\n',
        ),
        (  # a value on the next line, or a block scalar, becomes one line
            "---\nstatus:\n  planning\nnext: 1\n---\n",
            "---\nstatus: completed\ncompletion_date: 2026-03-04\nnext: 1\n---\n",
        ),
        (
            "---\nstatus: >-\n  planning\n  \nnext: 1\n---\n",
            "---\nstatus: completed\ncompletion_date: 2026-03-04\nnext: 1\n---\n",
        ),
        (  # comments, nested `status:` keys and the body are not touched
            "---\n# status: draft\nmeta:\n  status: internal\nstatus: new\n---\nstatus: body\n",
            "---\n# status: draft\nmeta:\n  status: internal\nstatus: completed\n"
            "completion_date: 2026-03-04\n---\nstatus: body\n",
        ),
        (
            "---\nstatus_note: keep\nstatus: new\n---\n",
            "---\nstatus_note: keep\nstatus: completed\ncompletion_date: 2026-03-04\n---\n",
        ),
        (
            "---\nstatus: new\n...\n",
            "---\nstatus: completed\ncompletion_date: 2026-03-04\n...\n",
        ),
    ],
)
def test_tricky_frontmatter(before: str, after: str) -> None:
    assert set_status_text(before, "completed", DAY) == after


def test_without_a_date_only_the_status_changes() -> None:
    text = "---\nstatus: completed\ncompletion_date: 2020-01-01\n---\n"
    assert set_status_text(text, "planning", None) == text.replace("completed", "planning")


def test_setting_the_same_values_changes_nothing() -> None:
    text = "---\nstatus: completed  # done\ncompletion_date: 2026-03-04\n---\n"
    assert set_status_text(text, "completed", DAY) == text


def test_status_word_is_normalized_and_checked() -> None:
    assert set_status_text("---\nstatus: new\n---\n", "In Progress", None) == (
        "---\nstatus: in_progress\n---\n"
    )
    with pytest.raises(CeError, match=r"^x\.md: cannot set the status: 'finished' is not a"):
        set_status_text("---\nstatus: new\n---\n", "finished", None, where="x.md")


@pytest.mark.parametrize(
    "text", ["# No frontmatter\n", "---\nstatus: new\n", "", "status: new\n---\n"]
)
def test_no_frontmatter_is_an_error(text: str) -> None:
    with pytest.raises(CeError, match=r"^x\.md: cannot set the status: the file has no YAML"):
        set_status_text(text, "completed", DAY, where="x.md")


@pytest.mark.parametrize(
    "text",
    [
        '---\ntitle: "a\nstatus: fake"\nstatus: new\n---\n',  # the first `status:` is in a string
        "---\n{title: T, status: new}\n---\n",  # a flow mapping: no line to edit
        "---\nstatus: &s new\nother: *s\n---\n",  # an alias shares the value
    ],
)
def test_edits_that_would_change_more_are_refused(text: str) -> None:
    with pytest.raises(CeError, match=r"^x\.md: cannot set `status: completed` without disturb"):
        set_status_text(text, "completed", DAY, where="x.md")


def test_malformed_yaml_is_reported() -> None:
    with pytest.raises(CeError, match=r"^x\.md: the YAML frontmatter is malformed at line 3"):
        set_status_text("---\nstatus: new\ntitle: a: b\n---\n", "completed", DAY, where="x.md")


# --- set_status on a file ----------------------------------------------------------------


def test_set_status_writes_atomically_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "PRP-1.md"
    text = "---\r\nprp_id: PRP-1\r\ntitle: T\r\nstatus: planning\r\n---\r\nbody \u00e9\r\n"
    path.write_bytes(text.encode())
    path.chmod(0o640)
    set_status(path, "completed", DAY)
    assert path.read_bytes().decode() == set_status_text(text, "completed", DAY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PRP-1.md"]
    assert parse_prp(path).status == "completed"


def test_set_status_does_not_write_when_nothing_changes(tmp_path: Path) -> None:
    path = tmp_path / "PRP-1.md"
    path.write_text("---\nstatus: completed\n---\n", encoding="utf-8")
    inode = path.stat().st_ino
    set_status(path, "completed", None)
    assert path.stat().st_ino == inode


def test_set_status_through_a_symlink_updates_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real.md"
    target.write_text("---\nstatus: new\n---\n", encoding="utf-8")
    link = tmp_path / "PRP-1.md"
    link.symlink_to(target)
    set_status(link, "done", None)
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "---\nstatus: done\n---\n"


def test_set_status_errors_leave_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "PRP-1.md"
    path.write_text("no frontmatter\n", encoding="utf-8")
    with pytest.raises(CeError, match=r"PRP-1\.md: cannot set the status"):
        set_status(path, "completed", DAY)
    assert path.read_text(encoding="utf-8") == "no frontmatter\n"
    with pytest.raises(CeError, match=r"missing\.md: cannot read the PRP file"):
        set_status(tmp_path / "missing.md", "completed", DAY)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_set_status_in_a_read_only_directory_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "PRP-1.md"
    path.write_text("---\nstatus: new\n---\n", encoding="utf-8")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            set_status(path, "completed", DAY)
    finally:
        tmp_path.chmod(0o700)
    assert path.read_text(encoding="utf-8") == "---\nstatus: new\n---\n"


# --- any frontmatter ---------------------------------------------------------------------


def dump(mapping: dict[str, object]) -> str:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(mapping, stream)
    return stream.getvalue().rstrip("\n")


plain = st.text(alphabet="abcdefghij _-./", min_size=1, max_size=12).filter(
    lambda s: s.strip() == s and s[0].isalpha()
)
extra_values = st.recursive(
    st.none() | st.booleans() | st.integers() | plain | st.text(max_size=10) | st.dates(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None)
@given(
    extra=st.dictionaries(
        plain.filter(lambda k: k.lower() not in ("status", "completion_date")),
        extra_values,
        max_size=6,
    ),
    status=st.sampled_from(["planning", "'new'", '"draft"', "In Progress", None]),
    existing_date=st.sampled_from([None, "2020-01-02", "'2020-01-02'", ""]),
    crlf=st.booleans(),
    body=st.text(max_size=80),
    new_status=st.sampled_from(["completed", "planning", "draft"]),
    day=st.none() | st.dates(),
)
def test_round_trip_changes_only_status_and_date(
    *,
    extra: dict[str, object],
    status: str | None,
    existing_date: str | None,
    crlf: bool,
    body: str,
    new_status: str,
    day: date | None,
) -> None:
    chunks = [dump({key: value}) for key, value in extra.items()]  # one per top-level key
    if status is not None:
        chunks.insert(len(chunks) // 2, f"status: {status}")
    if existing_date is not None:
        chunks.insert(len(chunks) // 3, f"completion_date: {existing_date}")
    newline = "\r\n" if crlf else "\n"
    lines = "\n".join(chunks).splitlines()
    text = newline.join(["---", *lines, "---", body])
    updated = set_status_text(text, new_status, day)
    kept = [
        line
        for line in updated.split(newline)
        if not line.startswith(("status:", "completion_date:"))
    ]
    before = [
        line for line in text.split(newline) if not line.startswith(("status:", "completion_date:"))
    ]
    assert kept == before
    assert updated.endswith(body)
    assert f"{newline}status: " in updated
    if day is not None:
        assert f"completion_date: {day.isoformat()}" in updated or (
            f"completion_date: '{day.isoformat()}'" in updated
        )
