"""Names in git and their parsers (DESIGN.md § Git layout): one module writes and reads them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ce.core.names import (
    SLUG_MAX,
    Checkpoint,
    MergeSubject,
    branch_name,
    checkpoint_subject,
    integration_worktree_name,
    merge_subject,
    parse_checkpoint,
    parse_merge,
    phases_done,
    worktree_name,
)
from ce.git import Repo, check_ref_format
from ce.run.load import worktree_path
from conftest import make_repo


@pytest.mark.parametrize(
    ("prp_id", "title", "expected"),
    [
        ("PRP-43.2.1", "Add login form", "prp-43-2-1-add-login-form"),
        ("PRP-43-INITIAL", "Setup", "prp-43-initial-setup"),
        ("prp-7", "  Trim   me  ", "prp-7-trim-me"),
        ("PRP-1", "Café crème: naïve façade", "prp-1-cafe-creme-naive-facade"),
        ("PRP-1", "日本語のタイトル", "prp-1"),
        ("PRP-1", "Straße 🚀 émoji", "prp-1-strae-emoji"),
        ("PRP-2", "$(rm -rf /); `echo hi` && a|b > c ~^:?*[\\", "prp-2-rm-rf-echo-hi-a-b-c"),
        ("PRP-3", "..lock refs/heads/@{-1}.lock", "prp-3-lock-refs-heads-1-lock"),
        ("PRP-A", "", "prp-a"),
    ],
)
def test_branch_name(prp_id: str, title: str, expected: str) -> None:
    assert branch_name(prp_id, title) == expected
    assert check_ref_format(expected)


def test_branch_name_cuts_a_long_title_at_a_word() -> None:
    title = "Implement the user authentication flow with OAuth2 providers and refresh tokens"
    name = branch_name("PRP-43.2.1", title)
    slug = name.removeprefix("prp-43-2-1-")
    assert slug == "implement-the-user-authentication-flow"
    assert len(slug) <= SLUG_MAX


def test_branch_name_cuts_one_endless_word() -> None:
    slug = branch_name("PRP-9", "x" * 300).removeprefix("prp-9-")
    assert slug == "x" * SLUG_MAX


def test_worktree_path(tmp_path: Path) -> None:
    root = tmp_path / "myrepo"
    beside = tmp_path.resolve()
    assert worktree_path(root, "PRP-43.2.1") == beside / "myrepo-prp-43.2.1"
    assert worktree_path(root, "PRP-43-INITIAL", None) == beside / "myrepo-prp-43-initial"
    assert worktree_path(root, "PRP-1", tmp_path / "wts") == beside / "wts" / "myrepo-prp-1"
    assert worktree_path(root, "PRP-1", Path("..")) == beside / "myrepo-prp-1"
    assert worktree_path(root, "PRP-a/../b") == beside / "myrepo-prp-a-..-b"


def test_worktree_names() -> None:
    assert worktree_name("myrepo", "PRP-43.2.1") == "myrepo-prp-43.2.1"
    assert integration_worktree_name("myrepo") == "myrepo-ce-integration"


@pytest.mark.parametrize(
    ("prp_id", "phase", "title"),
    [("PRP-43.2.1", 2, "Add the form"), ("PRP-1", 10, "Title - with: separators")],
)
def test_checkpoint_subjects_read_back(prp_id: str, phase: int, title: str) -> None:
    subject = checkpoint_subject(prp_id, phase, title)
    assert subject == f"{prp_id}: Phase {phase} - {title}"
    assert parse_checkpoint(subject) == Checkpoint(prp_id, phase, title)


@pytest.mark.parametrize(
    "subject",
    ["PRP-1: status completed", "PRP-1: Phase two - x", "Merge PRP-1: Phase 1 - x", "fix"],
)
def test_not_a_checkpoint(subject: str) -> None:
    assert parse_checkpoint(subject) is None


def test_merge_subjects_read_back() -> None:
    subject = merge_subject("PRP-43.2.1", "Login: the form")
    assert subject == "Merge PRP-43.2.1: Login: the form"
    assert parse_merge(subject) == MergeSubject("PRP-43.2.1", "Login: the form")
    assert parse_merge("Merge branch 'main' into prp-1") is None
    assert parse_merge(checkpoint_subject("PRP-1", 1, "x")) is None


# A PRP's branch that merged the target (conflict policy `agent`) carries the checkpoint
# commits of the PRPs merged before it.
MIXED = [
    "PRP-1: Phase 1 - first",
    "PRP-2: Phase 1 - theirs",
    "PRP-2: Phase 2 - theirs",
    "Merge PRP-2: Theirs",
    "PRP-1: Phase 2 - second",
    "PRP-1: Phase 2 - second, amended",
    "PRP-10: Phase 3 - a longer id",
]


def test_phases_done_counts_only_the_prps_own_checkpoints() -> None:
    assert phases_done(MIXED, "PRP-1") == {1, 2}
    assert phases_done(MIXED, "PRP-2") == {1, 2}
    assert phases_done(MIXED, "PRP-10") == {3}
    assert phases_done(MIXED, "PRP-3") == set()


def _commit_all(repo: Repo, subjects: list[str]) -> str:
    for subject in subjects:
        repo.commit_all(subject, allow_empty=True)
    return repo.rev_parse("HEAD")


class _Ledger:
    """What the monitor's callback asks of the ledger: the PRP's base, and what it reports."""

    def __init__(self, prp_id: str, base: str) -> None:
        self.records = {prp_id: SimpleNamespace(base=base)}
        self.reported: list[tuple[str, int, int, str]] = []

    def __contains__(self, prp_id: object) -> bool:
        return prp_id in self.records

    def get(self, prp_id: str) -> SimpleNamespace:
        return self.records[prp_id]

    def phases_committed(self, prp_id: str, done: int, phase: int, title: str) -> None:
        self.reported.append((prp_id, done, phase, title))


def test_the_live_phase_count_counts_only_the_prps_own_checkpoints(tmp_path: Path) -> None:
    """The engine's third counter (the monitor's, once Orchestrator._on_tip) counted every
    PRP's checkpoints on a branch that merged the target."""
    from ce.run.crew import Crew

    repo = Repo(make_repo(tmp_path / "repo"))
    base = repo.rev_parse("HEAD")
    # PRP-1's phase 1, then the target merged in with PRP-2's three phases.
    theirs = [f"PRP-2: Phase {n} - theirs" for n in (1, 2, 3)]
    tip = _commit_all(repo, ["PRP-1: Phase 1 - first", *theirs, "Merge PRP-2: Theirs"])
    ledger = _Ledger("PRP-1", base)
    crew = SimpleNamespace(ledger=ledger, ctx=SimpleNamespace(repo=repo))
    Crew.on_tip(crew, "PRP-1", tip)  # type: ignore[arg-type]
    assert ledger.reported == [("PRP-1", 1, 1, "first")]  # the bug: 3 phases, PRP-2's
