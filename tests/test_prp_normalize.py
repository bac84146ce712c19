"""Every form of the PRP vocabulary (DESIGN.md), read through `parse_prp`, and its errors."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from ce.core.errors import CeError
from ce.core.ids import normalize_id
from ce.prp.model import Complexity, Prp, StatusClass
from ce.prp.parse import parse_prp

PATH = Path("PRPs/feature-requests/PRP-1.1.1-thing.md")
BASE = "prp_id: PRP-1.1.1\ntitle: Thing\nstatus: planning"


def parse(front: str, body: str = "", *, base: str = BASE) -> Prp:
    return parse_prp(PATH, f"---\n{base}\n{front}\n---\n{body}")


def error(front: str, body: str = "", *, base: str = BASE) -> str:
    with pytest.raises(CeError) as caught:
        parse(front, body, base=base)
    message = str(caught.value)
    assert message.startswith(f"{PATH}: "), message
    return message


# --- ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PRP-43.2.1", "PRP-43.2.1"),
        ("43.2.1", "PRP-43.2.1"),
        (" 43.2.1 ", "PRP-43.2.1"),
        (36.2, "PRP-36.2"),
        (12, "PRP-12"),
        ("PRP-A", "PRP-A"),
        ("prp-43.2.1", "PRP-43.2.1"),
        ("Prp-43.2.1", "PRP-43.2.1"),
        ("PRP-PRP-43.2.1", "PRP-43.2.1"),
        ("PRP-43-INITIAL", "PRP-43-INITIAL"),
        ("PRP-a_b-c.d", "PRP-a_b-c.d"),
    ],
)
def test_normalize_id(raw: object, expected: str) -> None:
    assert normalize_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "43 2 1",
        "PRP-43/2",
        "PRP-../etc",
        "PRP-1..2",
        "$(rm -rf ~)",
        "PRP-1;ls",
        "PRP-1@{u}",
        "PRP-`x`",
        "",
        "PRP-",
        "PRP-.hidden",
        "-43",
        "x" * 120,
        True,
        None,
        [],
        {},
        -1,
        float("nan"),
        float("inf"),
        10**40,
    ],
)
def test_normalize_id_rejects(raw: object) -> None:
    assert normalize_id(raw) is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [("PRP-43.2.1", "PRP-43.2.1"), ('"34.3.2"', "PRP-34.3.2"), ("36.2.1", "PRP-36.2.1")],
)
def test_prp_id_forms(written: str, expected: str) -> None:
    assert parse("", base=f"prp_id: {written}\ntitle: T\nstatus: new").id == expected


@pytest.mark.parametrize("written", ['"a b"', '"PRP-1/x"', '"PRP-$(id)"', '"PRP-@{u}"', "[1]"])
def test_unsafe_prp_id_is_an_error(written: str) -> None:
    message = error("", base=f"prp_id: {written}\ntitle: T\nstatus: new")
    assert "`prp_id`" in message
    assert "PRP-43.2.1" in message  # the fix shows the form to write


def test_missing_prp_id_comes_from_the_file_name_with_a_warning() -> None:
    prp = parse("", base="title: T\nstatus: new")
    assert prp.id == "PRP-1.1.1"
    assert prp.warnings == (
        f"{PATH}: no `prp_id` in the frontmatter; using PRP-1.1.1 from the file name.",
    )


def test_missing_prp_id_without_an_id_in_the_file_name_is_an_error() -> None:
    with pytest.raises(CeError, match=r"^notes\.md: the frontmatter has no `prp_id`"):
        parse_prp(Path("notes.md"), "---\ntitle: T\nstatus: new\n---\n")


def test_file_name_disagreeing_with_the_id_is_a_warning() -> None:
    prp = parse("", base="prp_id: PRP-9.9.9\ntitle: T\nstatus: new")
    assert prp.warnings == (f"{PATH}: the file name says PRP-1.1.1 but its `prp_id` is PRP-9.9.9.",)


# --- title -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "body", "expected"),
    [
        ("title: From title\nfeature_name: No\nname: No", "# No\n", "From title"),
        ('feature_name: "From feature_name"\nname: No', "# No\n", "From feature_name"),
        ("name: From name", "# No\n", "From name"),
        ("", "Intro\n\n```\n# not a heading\n```\n#  From   heading  #\n", "From heading"),
        ("title:", "## Not level one\n# From heading\n", "From heading"),
        ("title: 42", "", "42"),
    ],
)
def test_title_sources(front: str, body: str, expected: str) -> None:
    assert parse(front, body, base="prp_id: PRP-1\nstatus: new").title == expected


def test_missing_title_is_an_error() -> None:
    message = error("", "no heading here\n", base="prp_id: PRP-1\nstatus: new")
    assert "no title" in message
    assert "`title: ...`" in message


def test_title_of_a_wrong_type_is_an_error() -> None:
    assert "field `title`: expected a line of text, got a list" in error(
        "", base="prp_id: PRP-1\nstatus: new\ntitle: [a]"
    )


# --- status ------------------------------------------------------------------------------

READY = ["planning", "pending", "new", "initial", "ready", "in_progress"]
DONE = ["completed", "complete", "done", "executed", "validated", "merged"]
NOT_RUNNABLE = ["draft", "rejected", "archived", "superseded", "blocked", "cancelled"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [(w, StatusClass.READY) for w in READY]
    + [(w, StatusClass.DONE) for w in DONE]
    + [(w, StatusClass.NOT_RUNNABLE) for w in NOT_RUNNABLE],
)
def test_status_vocabulary(word: str, expected: StatusClass) -> None:
    prp = parse("", base=f"prp_id: PRP-1\ntitle: T\nstatus: {word}")
    assert (prp.status, prp.status_class) == (word, expected)


@pytest.mark.parametrize(
    ("written", "word"),
    [("In Progress", "in_progress"), ("in-progress", "in_progress"), ('"COMPLETED"', "completed")],
)
def test_status_spelling_is_normalized(written: str, word: str) -> None:
    assert parse("", base=f"prp_id: PRP-1\ntitle: T\nstatus: {written}").status == word


def test_unknown_status_names_the_word_and_the_accepted_ones() -> None:
    message = error("", base="prp_id: PRP-1\ntitle: T\nstatus: finished")
    assert "field `status`: 'finished' is not a status ce knows" in message
    for word in (*READY, *DONE, *NOT_RUNNABLE):
        assert word in message


@pytest.mark.parametrize("written", ["3", "[planning]", "true"])
def test_status_of_a_wrong_type_is_an_error(written: str) -> None:
    assert "field `status`" in error("", base=f"prp_id: PRP-1\ntitle: T\nstatus: {written}")


def test_missing_status_is_an_error_with_the_fix() -> None:
    assert "no `status`; add `status: planning`" in error("", base="prp_id: PRP-1\ntitle: T")


# --- dependencies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("dependencies: []", ()),
        ("dependencies:", ()),
        ("dependencies: None", ()),
        ("dependencies: none", ()),
        ("dependencies: PRP-34.1.1", ("PRP-34.1.1",)),
        ('dependencies: ["34.1.1"]', ("PRP-34.1.1",)),
        ("dependencies:\n  - 34.1.1\n  - PRP-34.2.1", ("PRP-34.1.1", "PRP-34.2.1")),
        ('dependencies: "34.1.1, 34.2.1"', ("PRP-34.1.1", "PRP-34.2.1")),
        ('dependencies: "PRP-36.1.1 (ProjectInitializer class)"', ("PRP-36.1.1",)),
        ('dependencies: "PRP-36.1.1 (a, b), PRP-36.2.1"', ("PRP-36.1.1", "PRP-36.2.1")),
        ("dependencies:\n  - PRP-36.1.1: ProjectInitializer class", ("PRP-36.1.1",)),
        ("dependencies:\n  - id: 36.1.1\n    why: config", ("PRP-36.1.1",)),
        ("dependencies: [34.1.1, PRP-34.1.1, prp-34.2.1, 34.1.1]", ("PRP-34.1.1", "PRP-34.2.1")),
        ("dependencies: 12", ("PRP-12",)),
        ("dependencies: '`PRP-7.1.1`.'", ("PRP-7.1.1",)),
        ("dependencies: 'PRP-A: the base'", ("PRP-A",)),
        ('dependencies: "[34.1.1; 34.2.1]"', ("PRP-34.1.1", "PRP-34.2.1")),
        ("depends_on: [PRP-5]", ("PRP-5",)),
    ],
)
def test_dependency_forms(front: str, expected: tuple[str, ...]) -> None:
    prp = parse(front)
    assert prp.dependencies == expected
    assert prp.ignored_dependencies == ()
    assert prp.warnings == ()


def test_prose_dependencies_are_ignored_with_a_warning_naming_the_file() -> None:
    prp = parse('dependencies: [uv, repomix_unpack.py, "Phase 1", PRP-2.1.1, uv]')
    assert prp.dependencies == ("PRP-2.1.1",)
    assert prp.ignored_dependencies == ("uv", "repomix_unpack.py", "Phase 1")
    assert len(prp.warnings) == 3
    assert prp.warnings[0] == (
        f"{PATH}: dependency 'uv' is not a PRP id, so it is ignored (write ids such as "
        "PRP-43.1.1; put notes in parentheses after the id)."
    )


@pytest.mark.parametrize(
    ("front", "fragment"),
    [
        ("dependencies: PRP-1/../x", "'PRP-1/../x' looks like a PRP id but is not a valid one"),
        ("dependencies: [[34.1.1]]", "expected a PRP id or a list of them, got a list"),
        ("dependencies: true", "got true/false"),
        ("dependencies: {a: 1, b: 2}", "expected a PRP id, got the mapping"),
        ("dependencies: !!set {34.1.1}", "got a set"),
    ],
)
def test_dependency_errors(front: str, fragment: str) -> None:
    message = error(front)
    assert "field `dependencies`" in message
    assert fragment in message


def test_self_dependency_is_an_error() -> None:
    message = error("dependencies: [1.1.1]")
    assert "field `dependencies`: PRP-1.1.1 depends on itself" in message


# --- stage, hours, order, batch ----------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("stage: 2", 2),
        ('stage: "2"', 2),
        ("stage: stage-2-parallel", 2),
        ("stage: stage-1-sequential", 1),
        ("stage: Stage 3", 3),
        ("stage: 2.0", 2),
        ("stage:", None),
        ("", None),
    ],
)
def test_stage_forms(front: str, expected: int | None) -> None:
    assert parse(front).stage_hint == expected


@pytest.mark.parametrize("front", ["stage: parallel", "stage: true", "stage: -1", "stage: [2]"])
def test_stage_errors(front: str) -> None:
    assert "field `stage`" in error(front)


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("estimated_hours: 1.5", 1.5),
        ("estimated_hours: 2", 2.0),
        ('estimated_hours: "3-5"', 5.0),
        ("estimated_hours: 24-36", 36.0),
        ("estimated_hours: 3–5", 5.0),
        ("estimated_hours: 2 to 4 hours", 4.0),
        ("estimated_hours: 2h", 2.0),
        ("estimated_hours: 2 hours", 2.0),
        ("estimated_hours: 1.5-2h", 2.0),
        ("estimated_hours: ~3", 3.0),
        ("estimated_hours: 30 min", 0.5),
        ("estimated_hours: TBD", None),
        ("estimated_hours:", None),
        ("effort_hours: 1.5", 1.5),
        ("estimated_hours: 4\neffort_hours: 1", 4.0),
        ("", None),
    ],
)
def test_hours_forms(front: str, expected: float | None) -> None:
    assert parse(front).estimated_hours == expected


@pytest.mark.parametrize(
    "front",
    [
        "estimated_hours: lots",
        "estimated_hours: -1",
        "estimated_hours: true",
        "estimated_hours: [1]",
        "estimated_hours: .nan",
        "estimated_hours: .inf",
        "estimated_hours: 2026-01-01",
        "effort_hours: 3 days",
    ],
)
def test_hours_errors(front: str) -> None:
    message = error(front)
    assert f"field `{front.split(':', maxsplit=1)[0]}`" in message
    assert '"3-5"' in message or "got" in message


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("order: 3", 3),
        ('order: "3"', 3),
        ("execution_order: 4\nmerge_order: 5", 4),
        ("merge_order: 5", 5),
        ("order: 1\nexecution_order: 4", 1),
        ("", None),
    ],
)
def test_order_forms(front: str, expected: int | None) -> None:
    assert parse(front).order == expected


def test_order_error() -> None:
    assert "field `execution_order`: 'first' is not a whole number" in error(
        "execution_order: first"
    )


@pytest.mark.parametrize(
    ("front", "expected"),
    [("batch_id: 47", "47"), ('batch_id: "47"', "47"), ("batch: 47", "47"), ("", None)],
)
def test_batch_id_forms(front: str, expected: str | None) -> None:
    assert parse(front).batch_id == expected


@pytest.mark.parametrize("front", ['batch_id: "4 7"', "batch: a/b", "batch_id: [1]"])
def test_batch_id_errors(front: str) -> None:
    assert f"field `{front.split(':', maxsplit=1)[0]}`" in error(front)


# --- files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("files_modified:\n  - src/a.py\n  - tests/test_a.py", ("src/a.py", "tests/test_a.py")),
        (
            "files_modified: [./src/app/metrics.py, src/app/__init__.py]",
            ("src/app/metrics.py", "src/app/__init__.py"),
        ),
        ('files_modified: "a.py, b.md (new dir)"', ("a.py", "b.md")),
        ('files_modified: "src/x.py (uses a, b), docs/y.md"', ("src/x.py", "docs/y.md")),
        ("files_modified:\n  - '`src/x.py` - new module'", ("src/x.py",)),
        ("files_modified:\n  - src/x.py — the module", ("src/x.py",)),
        ("files_modified:\n  - 'src/x.py: add a function'", ("src/x.py",)),
        ("files_modified:\n  - src/x.py: add a function", ("src/x.py",)),
        ("files_modified:\n  - path: src/x.py\n    action: modify", ("src/x.py",)),
        ("files_modified: ['**src/bold.py**']", ("src/bold.py",)),
        ("files_modified: 'src\\win\\path.py'", ("src/win/path.py",)),
        ("files_modified: [a/./b//c.py, a/../d.py, x/]", ("a/b/c.py", "d.py", "x")),
        ("files_modified: ['src/**/*.py']", ("src/**/*.py",)),
        ("files_modified: [a.py]\nfiles_created: [b.py, a.py]", ("a.py", "b.py")),
        ("files_to_modify: [a.py]\nfiles_to_create: [b.py]", ("a.py", "b.py")),
        ("files_modified: None", ()),
        ("files_modified: []", ()),
        ("files_modified:", ()),
        ("", ()),
    ],
)
def test_file_forms(front: str, expected: tuple[str, ...]) -> None:
    assert parse(front).files == expected


@pytest.mark.parametrize(
    ("front", "fragment"),
    [
        ("files_modified: [/etc/passwd]", "'/etc/passwd' is an absolute path"),
        ("files_created: [~/x.py]", "'~/x.py' is an absolute path"),
        ("files_modified: ['C:\\x.py']", "'C:/x.py' is an absolute path"),
        ("files_modified: [../outside.py]", "'../outside.py' points outside the repository"),
        ("files_created: [a/../../b.py]", "'a/../../b.py' points outside the repository"),
        ("files_modified: [.]", "'.' is not a file path"),
        ("files_modified: [[a.py]]", "expected a file path or a list of them, got a list"),
        ('files_modified: "a\\x01b.py"', "contains a control character"),
    ],
)
def test_file_errors(front: str, fragment: str) -> None:
    message = error(front)
    assert f"field `{front.split(':', maxsplit=1)[0]}`" in message
    assert fragment in message


# --- complexity, model, validation -------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("complexity: low", Complexity.LOW),
        ("complexity: MEDIUM", Complexity.MEDIUM),
        ("complexity: High", Complexity.HIGH),
        ("complexity:", Complexity.MEDIUM),
        ("", Complexity.MEDIUM),
    ],
)
def test_complexity_forms(front: str, expected: Complexity) -> None:
    assert parse(front).complexity is expected


def test_complexity_error() -> None:
    assert "field `complexity`: 'extreme' is not a complexity; write low, medium or high" in error(
        "complexity: extreme"
    )


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("model: haiku", "haiku"),
        ("model: Sonnet", "sonnet"),
        ("model: opus", "opus"),
        ("", None),
        ("model: gpt-5-codex", "gpt-5-codex"),  # a model name is passed through, as --model
        ("model: claude-sonnet-4-5", "claude-sonnet-4-5"),
    ],
)
def test_model_forms(front: str, expected: str | None) -> None:
    assert parse(front).model == expected


def test_model_error() -> None:
    assert "field `model`: 'big model' is not a model; write haiku, sonnet, opus or a " in error(
        "model: big model"
    )
    assert "field `model`: 5 is not a model" in error("model: 5")


def test_validation_commands() -> None:
    prp = parse(
        "validation:\n  level1: ruff check .\n  L3: ' pytest -q '\n  4: make e2e\n  level2:"
    )
    assert dict(prp.validation) == {
        "level1": "ruff check .",
        "level3": "pytest -q",
        "level4": "make e2e",
    }


@pytest.mark.parametrize(
    ("front", "fragment"),
    [
        ("validation: pytest", 'expected a mapping such as {level3: "pytest -q"}'),
        ("validation: {level7: x}", "'level7' is not a validation level"),
        ("validation: {level3: [a]}", "level3: expected a command line as text, got a list"),
    ],
)
def test_validation_errors(front: str, fragment: str) -> None:
    message = error(front)
    assert "field `validation`" in message
    assert fragment in message


# --- unknown keys and key spelling -------------------------------------------------------


def test_unknown_keys_are_kept_as_written() -> None:
    prp = parse("created: 2026-03-02\nowner: {team: core}\nTags: [a, b]\n7: seven")
    assert dict(prp.extra) == {
        "created": datetime.date(2026, 3, 2),
        "owner": {"team": "core"},
        "Tags": ["a", "b"],
        "7": "seven",
    }


def test_known_keys_match_case_and_dashes() -> None:
    prp = parse("", base="PRP-ID: PRP-1\nTitle: T\nStatus: new\nEstimated Hours: 2")
    assert (prp.id, prp.title, prp.status, prp.estimated_hours) == ("PRP-1", "T", "new", 2.0)
    assert dict(prp.extra) == {}


def test_the_same_key_twice_in_two_spellings_is_an_error() -> None:
    assert "has both `status` and `Status`" in error("Status: done")


def test_several_field_errors_are_reported_together() -> None:
    message = error("stage: soon\ncomplexity: extreme")
    assert "field `stage`" in message
    assert "field `complexity`" in message
    assert "\n" not in message
