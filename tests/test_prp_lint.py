"""PRP files the planner can trust (issue 16 items 2, 3, 9), through the real CLI: misspelled
keys, untracked PRP files, phase headings outside the implementation section, a PRP without
declared files, duplicate YAML anchors; `ce lint` and `ce new`; docs/prp-format.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write
from ce.core.errors import CeError
from ce.prp.fields import ALIASES
from ce.prp.frontmatter import load_yaml
from ce.prp.normalize import STATUS_WORDS
from ce.prp.parse import parse_prp
from clikit import assert_untouched, ce, ce_process

PRP_DIR = Path("PRPs/feature-requests")
BATCH = [
    Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]], files=["a.txt"]),
    Spec(
        id="PRP-7.2.1",
        title="Bravo",
        deps=["PRP-7.1.1"],
        phases=[[write("b.txt", "b")]],
        files=["b.txt"],
    ),
]


def bravo(repo: Path) -> Path:
    return repo / PRP_DIR / "PRP-7.2.1-bravo.md"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def commit(repo: Path, message: str = "edit PRPs") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


# --- item 2: misspelled keys -------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("dependencies", "dependancies", "dependencies"),
        ("dependencies", "depends", "dependencies"),
        ("dependencies", "Dependency", "dependencies"),
        ("files_modified", "files_modifed", "files_modified"),
        ("title", "titel", "title"),  # the title would come from the `# ` heading
    ],
)
def test_a_misspelled_key_is_an_error_naming_the_file_key_and_known_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str],
) -> None:
    key, written, known = case
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    edit(bravo(repo), f"\n{key}:", f"\n{written}:")
    commit(repo)
    head = git(repo, "rev-parse", "main")

    run = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")
    lint = ce(repo, monkeypatch, capsys, "lint", "--batch", "7")

    expected = f"unknown key `{written}`: did you mean `{known}`?"
    assert run.code == 2 and f"error: {bravo(repo)}: {expected}" in run.err
    assert_untouched(repo, head)
    assert lint.code == 1
    assert f"error: {PRP_DIR / 'PRP-7.2.1-bravo.md'}: {expected}" in lint.out


def test_other_unknown_keys_are_allowed_and_listed_by_lint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="Alpha", phases=[[]], extra={"state": "x", "tags": "[a]"})]
    repo = make_batch_repo(tmp_path / "repo", specs)

    plan = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--dry-run", "--json")
    lint = ce(repo, monkeypatch, capsys, "lint")

    assert plan.code == 0 and plan.json()["stages"] == {"1": ["PRP-7.1.1"]}
    assert lint.code == 0
    assert lint.out.splitlines() == [
        f"info: {PRP_DIR}/PRP-7.1.1-alpha.md: no `files_modified` declared: drift is not "
        "checked and overlaps with other PRPs are not planned for.",
        f"info: {PRP_DIR}/PRP-7.1.1-alpha.md: keys ce does not read, kept as they are: "
        "`state`, `tags`.",
        "1 PRP file checked: no problems.",
    ]


# --- item 2: untracked PRP files ---------------------------------------------------------


def test_untracked_prp_files_are_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH[:1])
    (repo / PRP_DIR / "PRP-7.2.1-bravo.md").write_text(BATCH[1].markdown("7"), encoding="utf-8")
    (repo / PRP_DIR / "PRP-7.2.2-charlie.md").write_text(
        Spec(id="PRP-7.2.2", title="Charlie", phases=[[]]).markdown("7"), encoding="utf-8"
    )
    head = git(repo, "rev-parse", "main")

    run = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")
    lint = ce(repo, monkeypatch, capsys, "lint", "--batch", "7")

    assert run.code == 2
    assert "These PRP files are not tracked by git:\n" in run.err
    assert f"  {PRP_DIR}/PRP-7.2.1-bravo.md\n  {PRP_DIR}/PRP-7.2.2-charlie.md\n" in run.err
    assert "PRP-7.1.1" not in run.err.split("not tracked")[1].split("git add")[0]
    assert (
        f"`git add {PRP_DIR}/PRP-7.2.1-bravo.md {PRP_DIR}/PRP-7.2.2-charlie.md && git commit"
        in run.err
    )
    assert_untouched(repo, head)
    assert lint.code == 1 and "error: These PRP files are not tracked by git:" in lint.out

    commit(repo, "add the PRPs")
    assert ce(repo, monkeypatch, capsys, "lint", "--batch", "7").code == 0


# --- item 2: phase headings outside the implementation section ---------------------------


def test_a_phase_heading_outside_the_implementation_section_is_a_warning_naming_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    with bravo(repo).open("a", encoding="utf-8") as file:
        file.write("\n## Rollout Plan\n\n### Phase 1: Ship it\n")
    commit(repo)
    line = bravo(repo).read_text(encoding="utf-8").splitlines().index("### Phase 1: Ship it") + 1

    plan = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--dry-run", "--json")
    lint = ce(repo, monkeypatch, capsys, "lint", "--batch", "7")
    strict = ce(repo, monkeypatch, capsys, "lint", "--batch", "7", "--strict")

    warning = (
        f"{PRP_DIR}/PRP-7.2.1-bravo.md:{line}: `### Phase 1: Ship it` is under `## Rollout "
        "Plan`, outside the implementation section, so it is not a phase ce runs"
    )
    assert plan.code == 0 and plan.json()["prps"]["PRP-7.2.1"]["phases"] == ["Step 1"]
    assert f"warning: {repo / warning}" in plan.err
    assert lint.code == 0 and f"warning: {warning}" in lint.out
    assert lint.out.splitlines()[-1] == "2 PRP files checked: 0 errors, 1 warning."
    assert strict.code == 1


# --- item 2: no files declared -----------------------------------------------------------


def test_a_prp_without_declared_files_says_drift_was_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]])]
    repo = make_batch_repo(tmp_path / "repo", specs)

    summary = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert summary.code == 0
    level4 = summary.json()["prps"]["PRP-7.1.1"]["validation_results"]["level_4"]
    assert (level4["passed"], level4["skipped"], level4["errors"]) == (
        True,
        True,
        ["drift: not checked (no files declared)"],
    )
    page = repo / ".ce" / "tmp" / "batch-7-report.html"
    assert "L4: drift: not checked (no files declared)" in page.read_text(encoding="utf-8")


def test_the_terminal_summary_and_ce_validate_say_drift_was_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="Alpha", phases=[[write("a.txt", "a")]])]
    repo = make_batch_repo(tmp_path / "repo", specs)
    git(repo, "switch", "-q", "-c", "work")
    (repo / "a.txt").write_text("a\n", encoding="utf-8")
    commit(repo, "PRP-7.1.1: Phase 1 - Step 1")

    checked = ce(repo, monkeypatch, capsys, "validate", "--level", "4", "--prp", "PRP-7.1.1")
    git(repo, "switch", "-q", "main")
    run = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")

    assert checked.code == 0
    assert "Level 4 (integration): SKIP\n    drift: not checked (no files declared)\n" in (
        checked.out
    )
    assert run.code == 0
    assert "L4 skipped: drift: not checked (no files declared)" in " ".join(run.out.split())


# --- item 9: duplicate YAML anchors ------------------------------------------------------


def test_a_duplicate_yaml_anchor_is_the_users_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    edit(bravo(repo), "title: Bravo\n", "title: &x Bravo\nnote: &x twice\n")
    commit(repo)

    plan = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--dry-run", "--json")
    lint = ce(repo, monkeypatch, capsys, "lint", "--batch", "7")

    message = "the YAML frontmatter defines the same anchor `&x` twice (lines 3 and 4)"
    assert plan.code == 2 and f"{bravo(repo)}: {message}" in plan.err
    assert "This is a bug" not in plan.err
    assert json.loads(plan.out)["status"] == "ERROR"
    assert lint.code == 1 and message in lint.out


@pytest.mark.parametrize(
    "yaml_text",
    ["a: &x 1\nb: &x 2\n", "a: [&x 1, &x 2]\n", "a: {b: &x 1, c: &x 2}\n", "- &x a\n- &x b\n"],
)
def test_every_reused_anchor_is_refused(yaml_text: str) -> None:
    with pytest.raises(CeError, match="defines the same anchor `&x` twice"):
        load_yaml(Path("f.md"), yaml_text)


def test_ampersands_that_are_not_anchors_read_as_text() -> None:
    text = 'title: R&D & more\nnote: "&x and &x"\nalias: &y 1\nagain: *y\n'
    assert load_yaml(Path("f.md"), text) == {
        "title": "R&D & more",
        "note": "&x and &x",
        "alias": 1,
        "again": 1,
    }


# --- item 3: ce lint ---------------------------------------------------------------------


def test_lint_reports_every_broken_file_and_the_planners_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    (repo / PRP_DIR / "PRP-7.3.1-broken.md").write_text("no frontmatter\n", encoding="utf-8")
    (repo / PRP_DIR / "PRP-8.1.1-lost.md").write_text(
        Spec(id="PRP-8.1.1", title="Lost", deps=["PRP-8.9.9"], phases=[[]]).markdown("8"),
        encoding="utf-8",
    )
    commit(repo)

    lint = ce(repo, monkeypatch, capsys, "lint")

    assert lint.code == 1
    errors = [line for line in lint.out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {PRP_DIR}/PRP-7.3.1-broken.md: the file has no YAML")
    assert "PRP-8.1.1" in errors[1] and "depends on PRP-8.9.9" in errors[1]
    assert lint.out.splitlines()[-1] == "4 PRP files checked: 2 errors, 0 warnings."


def test_lint_through_the_installed_entry_point_changes_nothing(tmp_path: Path) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    edit(bravo(repo), "\ndependencies:", "\ndependancies:")  # not committed
    (repo / "docs").mkdir()
    example = Spec(id="PRP-9.1.1", title="Example", deps=["PRP-9.0.1"], phases=[[]])
    (repo / "docs" / "PRP-9.1.1-example.md").write_text(example.markdown("9"), encoding="utf-8")
    git(repo, "add", "docs")
    git(repo, "commit", "-q", "-m", "an example PRP outside the PRP directory")
    head = git(repo, "rev-parse", "main")

    broken = ce_process(repo, "lint", str(PRP_DIR / "PRP-7.2.1-bravo.md"))
    elsewhere = ce_process(repo, "lint", "docs/PRP-9.1.1-example.md")
    missing = ce_process(repo, "lint", "--batch", "9")
    outside = ce_process(tmp_path, "lint")

    assert broken.returncode == 1, broken.stderr
    assert "did you mean `dependencies`?" in broken.stdout and "Traceback" not in broken.stderr
    assert elsewhere.returncode == 0, elsewhere.stdout  # checked alone: not batch 9's plan
    assert elsewhere.stdout.endswith("1 PRP file checked: no problems.\n")
    assert missing.returncode == 2 and "no PRP files match" in missing.stderr
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr
    git(repo, "checkout", "-q", "--", ".")
    assert_untouched(repo, head)


# --- item 3: ce new ----------------------------------------------------------------------


def test_new_writes_a_skeleton_with_the_next_id_that_parses_and_lints_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)

    first = ce(repo, monkeypatch, capsys, "new", "--batch", "7", "Cache layer: 'LRU' & TTL")
    second = ce(repo, monkeypatch, capsys, "new", "--batch", "7", "--stage", "5", "Metrics")
    fresh = ce(repo, monkeypatch, capsys, "new", "--batch", "12", "First of its batch")

    made = repo / PRP_DIR / "PRP-7.2.2-cache-layer-lru-ttl.md"
    assert first.code == 0 and f"Created {PRP_DIR}/{made.name} (PRP-7.2.2)." in first.out
    assert second.code == 0 and "PRP-7.5.1-metrics.md" in second.out
    assert fresh.code == 0 and "PRP-12.1.1-first-of-its-batch.md" in fresh.out
    prp = parse_prp(made)
    assert (prp.id, prp.title, prp.status, prp.batch_id, prp.stage_hint) == (
        "PRP-7.2.2",
        "Cache layer: 'LRU' & TTL",
        "planning",
        "7",
        2,
    )
    assert [phase.title for phase in prp.phases] == ["First step", "Second step"]
    assert len(prp.phases[0].blocks) == 1 and prp.files == (f"docs/{made.name}",)
    assert dict(prp.extra) == {}
    text = made.read_text(encoding="utf-8")
    for key in ALIASES:  # every field the planner reads, under its first name
        assert re.search(rf"^{ALIASES[key][0]}:", text, re.M), key

    commit(repo, "add the new PRPs")
    lint = ce(repo, monkeypatch, capsys, "lint", "--strict")
    assert (lint.code, lint.out) == (0, "5 PRP files checked: no problems.\n")
    run = ce(repo, monkeypatch, capsys, "batch-exe", "PRP-7.2.2")
    assert run.code == 0, run.err
    assert git(repo, "show", f"main:docs/{made.name}") == "PRP-7.2.2: Cache layer: LRU & TTL"


def test_new_never_overwrites_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_batch_repo(tmp_path / "repo", BATCH)
    (repo / PRP_DIR / "PRP-7.2.2-taken.md").mkdir()  # in the way, and no PRP file

    result = ce(repo, monkeypatch, capsys, "new", "--batch", "7", "Taken")

    assert result.code == 2
    assert "PRP-7.2.2-taken.md already exists: ce new never overwrites a file." in result.err


# --- item 3: the format reference --------------------------------------------------------


def test_the_format_reference_lists_every_key_the_parser_reads_and_every_status() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "prp-format.md").read_text(encoding="utf-8")
    for key in (key for keys in ALIASES.values() for key in keys):
        assert f"`{key}`" in doc, key
    for word in STATUS_WORDS:
        assert f"`{word}`" in doc, word
    for term in ("sh run", "bash run", "## Implementation", "### Phase", "validation:"):
        assert term in doc, term
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "docs/prp-format.md" in readme


def test_the_pre_commit_hook_runs_ce_lint_on_prp_files_only() -> None:
    from ruamel.yaml import YAML

    text = (Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    (hook,) = YAML(typ="safe", pure=True).load(text)
    assert (hook["id"], hook["entry"], hook["language"]) == ("ce-lint", "ce lint", "python")
    matches = [
        bool(re.search(hook["files"], name)) and not re.search(hook["exclude"], name)
        for name in (
            "PRPs/feature-requests/PRP-43.2.1-cache.md",
            "PRP-43.1.1.md",
            "PRPs/feature-requests/PRP-43-INITIAL.md",
            "docs/PRP-notes/README.md",
            "README.md",
        )
    ]
    assert matches == [True, True, False, False, False]
