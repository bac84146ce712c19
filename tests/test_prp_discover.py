"""Finding PRP files: `--batch N`, explicit paths and ids, and dependencies outside the run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ce.core.errors import CeError
from ce.prp.discover import discover_batch, find_external, resolve_prps
from ce.prp.model import StatusClass


def write(
    directory: Path, name: str, prp_id: str | None, status: str = "planning", **more: str
) -> Path:
    lines = [f"prp_id: {prp_id}"] if prp_id else []
    lines += [f"title: Title of {prp_id or name}", f"status: {status}"]
    lines += [f"{key}: {value}" for key, value in more.items()]
    path = directory / name
    path.write_text("---\n" + "\n".join(lines) + "\n---\n", encoding="utf-8")
    return path


@pytest.fixture
def prp_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "PRPs" / "feature-requests"
    directory.mkdir(parents=True)
    return directory


# --- discover_batch ----------------------------------------------------------------------


def test_batch_files_in_natural_order_with_status_classes(prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.10.1-last.md", "PRP-43.10.1")
    write(prp_dir, "PRP-43.2.1-b.md", "43.2.1", "in_progress")
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1", "completed")
    write(prp_dir, "PRP-43.2.2-c.md", "PRP-43.2.2", "draft")
    write(prp_dir, "PRP-43.3.1.md", "PRP-43.3.1", "new")
    discovery = discover_batch(prp_dir, "43")
    assert discovery.batch_id == "43"
    assert [p.id for p in discovery.runnable] == ["PRP-43.2.1", "PRP-43.3.1", "PRP-43.10.1"]
    assert [(p.id, p.status_class) for p in discovery.skipped] == [
        ("PRP-43.1.1", StatusClass.DONE),
        ("PRP-43.2.2", StatusClass.NOT_RUNNABLE),
    ]
    assert discovery.warnings == (
        f"{prp_dir / 'PRP-43.2.2-c.md'}: PRP-43.2.2 is skipped: its status is `draft`.",
    )


def test_batch_leaves_out_other_files(prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1")
    write(prp_dir, "PRP-43-INITIAL.md", "PRP-43-INITIAL")
    write(prp_dir, "PRP-43.INITIAL.md", "PRP-43-INITIAL-2")
    write(prp_dir, "PRP-43.md", "PRP-43")
    write(prp_dir, "PRP-430.1.1-other.md", "PRP-430.1.1")
    write(prp_dir, "PRP-4.1.1-other.md", "PRP-4.1.1")
    write(prp_dir, "PRP-43.1.2-notes.txt", "PRP-43.1.2")
    (prp_dir / "PRP-43.9.9-dir.md").mkdir()
    (prp_dir / "sub").mkdir()
    write(prp_dir / "sub", "PRP-43.5.1-nested.md", "PRP-43.5.1")
    assert [p.id for p in discover_batch(prp_dir, "43").runnable] == ["PRP-43.1.1"]


def test_batch_files_are_the_md_files_as_pathlib_sees_them(prp_dir: Path, tmp_path: Path) -> None:
    # Listed from the directory's entries: a link to a PRP file is one, a dangling link, a
    # directory and a file named just `.md` (no suffix, to pathlib) are not.
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1")
    elsewhere = write(tmp_path, "PRP-43.2.1-linked.md", "PRP-43.2.1")
    (prp_dir / "PRP-43.2.1-linked.md").symlink_to(elsewhere)
    (prp_dir / "PRP-43.3.1-dangling.md").symlink_to(tmp_path / "missing.md")
    (prp_dir / "PRP-43.4.1-dir.MD").mkdir()
    write(prp_dir, ".md", "PRP-43.5.1")
    write(prp_dir, "PRP-43.6.1-upper.MD", "PRP-43.6.1")
    listed = [p for p in prp_dir.iterdir() if p.suffix.lower() == ".md" and p.is_file()]
    runnable = discover_batch(prp_dir, "43").runnable
    assert [p.id for p in runnable] == ["PRP-43.1.1", "PRP-43.2.1", "PRP-43.6.1"]
    assert sorted(p.path for p in runnable) == sorted(listed)


@pytest.mark.parametrize("batch", ["43", " 43 ", "PRP-43", "prp-43"])
def test_batch_spellings(prp_dir: Path, batch: str) -> None:
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1")
    assert discover_batch(prp_dir, batch).batch_id == "43"


def test_sub_batch(prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1")
    write(prp_dir, "PRP-43.2.1-b.md", "PRP-43.2.1")
    assert [p.id for p in discover_batch(prp_dir, "43.2").runnable] == ["PRP-43.2.1"]


def test_declared_batch_id_that_differs_is_a_warning(prp_dir: Path) -> None:
    path = write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1", batch_id="42")
    assert discover_batch(prp_dir, "43").warnings == (
        f"{path}: declares batch_id 42, but it matched {prp_dir / 'PRP-43.*.md'}.",
    )


def test_all_warnings_include_each_prps_own(prp_dir: Path) -> None:
    path = write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1", dependencies="[uv]")
    discovery = discover_batch(prp_dir, "43")
    assert discovery.warnings == ()
    assert discovery.all_warnings == discovery.runnable[0].warnings
    assert str(path) in discovery.all_warnings[0]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CeError, match=r"the PRP directory .*nope does not exist: create it, or "):
        discover_batch(tmp_path / "nope", "43")


def test_empty_batch_names_the_pattern_and_the_fix(prp_dir: Path) -> None:
    write(prp_dir, "PRP-42.1.1-a.md", "PRP-42.1.1")
    with pytest.raises(CeError) as caught:
        discover_batch(prp_dir, "43")
    assert str(caught.value).startswith(
        f"no PRP files match {prp_dir / 'PRP-43.*.md'}: the only batch in {prp_dir} is 42; "
        "check the batch number, or point `prp_dir`"
    )


def test_a_wrong_batch_lists_the_batches_there(prp_dir: Path) -> None:
    for name in ("PRP-47.1.1-a.md", "PRP-9.1.1-b.md", "PRP-47.2.1-c.md", "PRP-47-INITIAL.md"):
        write(prp_dir, name, name.split("-")[1].removesuffix(".md"))
    (prp_dir / "notes.md").write_text("# notes\n")

    with pytest.raises(CeError, match=rf"the batches in {re.escape(str(prp_dir))} are 9, 47; "):
        discover_batch(prp_dir, "74")


@pytest.mark.parametrize("batch", ["", "4*3", "../43", "43/1", "a b", "43..1", "$(x)"])
def test_unsafe_batch_id(prp_dir: Path, batch: str) -> None:
    with pytest.raises(CeError, match=r"is not a batch id: write the batch number, e\.g\. "):
        discover_batch(prp_dir, batch)


def test_every_broken_file_is_reported_at_once(prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1", stage="soon")
    write(prp_dir, "PRP-43.2.1-b.md", "PRP-43.2.1", "finished")
    write(prp_dir, "PRP-43.3.1-c.md", "PRP-43.3.1")
    with pytest.raises(CeError) as caught:
        discover_batch(prp_dir, "43")
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 PRP files cannot be read:"
    assert lines[1].startswith(f"{prp_dir / 'PRP-43.1.1-a.md'}: field `stage`")
    assert lines[2].startswith(f"{prp_dir / 'PRP-43.2.1-b.md'}: field `status`")


def test_duplicate_ids_name_both_files(prp_dir: Path) -> None:
    first = write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1")
    second = write(prp_dir, "PRP-43.1.2-b.md", "43.1.1")
    with pytest.raises(CeError) as caught:
        discover_batch(prp_dir, "43")
    assert str(caught.value) == (
        f"PRP-43.1.1 is the id of several PRP files: {first}, {second}; give each PRP its own "
        "`prp_id`."
    )


# --- resolve_prps ------------------------------------------------------------------------


@pytest.fixture
def repo(prp_dir: Path) -> Path:
    write(prp_dir, "PRP-43.1.1-a.md", "PRP-43.1.1", "completed")
    write(prp_dir, "PRP-43.2.1-config-loader.md", "PRP-43.2.1")
    write(prp_dir, "PRP-43.2.10-other.md", "PRP-43.2.10")
    write(prp_dir, "PRP-43.3.1.md", "PRP-43.3.1")
    write(prp_dir, "cache-layer.md", "PRP-43.4.1")
    write(prp_dir, "PRP-43.5.1-draft.md", "PRP-43.5.1", "draft")
    (prp_dir / "README.md").write_text("# Not a PRP\n", encoding="utf-8")
    return prp_dir.parent.parent


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("PRP-43.2.1", "PRP-43.2.1-config-loader.md"),
        ("43.2.1", "PRP-43.2.1-config-loader.md"),
        ("prp-43.2.1", "PRP-43.2.1-config-loader.md"),
        ("PRP-43.2.10", "PRP-43.2.10-other.md"),
        ("43.3.1", "PRP-43.3.1.md"),
        ("PRP-43.4.1", "cache-layer.md"),  # found by its frontmatter
        ("PRPs/feature-requests/PRP-43.2.1-config-loader.md", "PRP-43.2.1-config-loader.md"),
        ("PRP-43.2.1-config-loader.md", "PRP-43.2.1-config-loader.md"),  # a name in prp_dir
        ("PRP-43.1.1", "PRP-43.1.1-a.md"),  # done: returned, the caller skips it
    ],
)
def test_resolve_one(repo: Path, prp_dir: Path, arg: str, expected: str) -> None:
    (prp,) = resolve_prps([arg], prp_dir, repo)
    assert prp.path.name == expected


def test_resolve_absolute_path_and_order(repo: Path, prp_dir: Path) -> None:
    absolute = str(prp_dir / "PRP-43.3.1.md")
    prps = resolve_prps([absolute, "43.2.1", "PRP-43.3.1", absolute], prp_dir, repo / "elsewhere")
    assert [p.id for p in prps] == ["PRP-43.3.1", "PRP-43.2.1"]


def test_resolve_nothing(repo: Path, prp_dir: Path) -> None:
    assert resolve_prps([], prp_dir, repo) == ()


def test_unknown_id_says_where_it_looked(repo: Path, prp_dir: Path) -> None:
    with pytest.raises(CeError) as caught:
        resolve_prps(["43.9.9"], prp_dir, repo)
    assert str(caught.value) == (
        f"PRP-43.9.9 not found: there is no {prp_dir / 'PRP-43.9.9'}-*.md or "
        f"{prp_dir / 'PRP-43.9.9'}.md, and no PRP file in {prp_dir} has `prp_id: PRP-43.9.9`. "
        "Check the id, or give the file's path."
    )


def test_missing_path_says_where_it_looked(repo: Path, prp_dir: Path) -> None:
    with pytest.raises(CeError) as caught:
        resolve_prps(["PRP-43.9.9-x.md"], prp_dir, repo)
    assert str(caught.value) == (
        f"PRP-43.9.9-x.md: no such PRP file (looked for {repo / 'PRP-43.9.9-x.md'} and "
        f"{prp_dir / 'PRP-43.9.9-x.md'}); check the path."
    )


def test_argument_that_is_neither_path_nor_id(repo: Path, prp_dir: Path) -> None:
    with pytest.raises(CeError, match=r"^'a b' is neither a PRP file nor a PRP id"):
        resolve_prps(["a b"], prp_dir, repo)


def test_explicit_not_runnable_prp_is_an_error(repo: Path, prp_dir: Path) -> None:
    with pytest.raises(CeError) as caught:
        resolve_prps(["PRP-43.5.1"], prp_dir, repo)
    assert str(caught.value) == (
        f"{prp_dir / 'PRP-43.5.1-draft.md'}: PRP-43.5.1 has status `draft`, so it cannot run; "
        "set `status: planning` in its frontmatter to run it."
    )


def test_ambiguous_id(repo: Path, prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.6.1-a.md", "PRP-43.6.1")
    write(prp_dir, "PRP-43.6.1-b.md", "PRP-43.6.1")
    with pytest.raises(CeError, match=r"^PRP-43\.6\.1 is ambiguous: .*-a\.md, .*-b\.md all have"):
        resolve_prps(["43.6.1"], prp_dir, repo)


def test_two_files_with_one_id(repo: Path, prp_dir: Path) -> None:
    copy = write(prp_dir, "copy.md", "PRP-43.3.1")
    with pytest.raises(CeError, match=r"^PRP-43\.3\.1 is the id of several PRP files"):
        resolve_prps(["43.3.1", str(copy)], prp_dir, repo)


def test_a_broken_file_named_by_its_id_is_reported(repo: Path, prp_dir: Path) -> None:
    write(prp_dir, "PRP-43.7.1-broken.md", "PRP-43.7.1", stage="soon")
    with pytest.raises(CeError, match=r"PRP-43\.7\.1-broken\.md: field `stage`"):
        resolve_prps(["PRP-43.7.1"], prp_dir, repo)


def test_a_file_name_prefix_that_is_another_prp(prp_dir: Path) -> None:
    # PRP-43-INITIAL.md starts with "PRP-43-" but is not PRP-43: the frontmatter decides.
    write(prp_dir, "PRP-43-INITIAL.md", "PRP-43-INITIAL", "initial")
    write(prp_dir, "batch-overview.md", "PRP-43")
    (prp,) = resolve_prps(["PRP-43"], prp_dir, prp_dir)
    assert prp.path.name == "batch-overview.md"


# --- find_external -----------------------------------------------------------------------


def test_find_external(repo: Path, prp_dir: Path) -> None:
    (prp_dir / "PRP-43.8.1-broken.md").write_text("no frontmatter\n", encoding="utf-8")
    found = find_external(prp_dir, ["PRP-43.1.1", "43.4.1", "PRP-43.9.9", "PRP-43.8.1", "a b"])
    assert {prp_id: prp.path.name for prp_id, prp in found.items()} == {
        "PRP-43.1.1": "PRP-43.1.1-a.md",
        "PRP-43.4.1": "cache-layer.md",
    }
    assert found["PRP-43.1.1"].status_class is StatusClass.DONE


def test_find_external_prefers_the_file_name(prp_dir: Path) -> None:
    write(prp_dir, "a-copy.md", "PRP-43.1.1")
    write(prp_dir, "PRP-43.1.1-real.md", "PRP-43.1.1")
    assert find_external(prp_dir, ["PRP-43.1.1"])["PRP-43.1.1"].path.name == "PRP-43.1.1-real.md"


def test_find_external_in_a_missing_directory(tmp_path: Path) -> None:
    assert find_external(tmp_path / "nope", ["PRP-1"]) == {}
