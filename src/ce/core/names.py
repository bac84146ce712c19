"""The names ce gives things in git (DESIGN.md § Git layout), and the parsers that read them back.

- branch `prp-43-2-1-<slug>` (ASCII, lowercase, slug of the title ≤ 40 chars); the git layer
  checks it with `git check-ref-format` before using it;
- worktree directory `<repo>-prp-43.2.1`, integration worktree `<repo>-ce-integration`;
- checkpoint commit `PRP-43.2.1: Phase 2 - <phase title>`, one per phase;
- merge commit `Merge PRP-43.2.1: <title>`.

Pure: text in, text out. Whatever writes or reads these names asks this module, so a resume
reads exactly what a run wrote.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

SLUG_MAX = 40
CHECKPOINT_SUBJECT = re.compile(r"^(?P<id>PRP-\S+): Phase (?P<n>\d+) - (?P<title>.+)$")
_MERGE = re.compile(r"^Merge (?P<id>PRP-\S+): (?P<title>.*)$")


def branch_name(prp_id: str, title: str) -> str:
    """`prp-43-2-1-<slug of the title>` for PRP-43.2.1: ASCII, lowercase, slug <= 40 chars."""
    parts = ("prp", _slug(_bare_id(prp_id)), _slug(title, SLUG_MAX))
    return "-".join(part for part in parts if part)


def worktree_name(repo_name: str, prp_id: str) -> str:
    """`<repo>-prp-43.2.1`: the PRP's worktree directory, beside the repository by default."""
    name = _UNSAFE_IN_NAME.sub("-", _bare_id(prp_id).lower())
    return f"{repo_name}-prp-{name}"


def prp_file_name(prp_id: str, title: str) -> str:
    """`PRP-43.2.1-<slug of the title>.md`: the file `ce new` writes."""
    slug = _slug(title, SLUG_MAX)
    return f"{prp_id}-{slug}.md" if slug else f"{prp_id}.md"


def integration_worktree_name(repo_name: str) -> str:
    """The merge lane's detached worktree, where merged trees are validated."""
    return f"{repo_name}-ce-integration"


def conflict_branch(branch: str, attempt: int) -> str:
    """`<branch>-conflict-1`: the attempt the `rerun` conflict policy set aside, kept."""
    return f"{branch}-conflict-{attempt}"


def conflict_branches(branch: str) -> str:
    """The `git for-each-ref` pattern of `branch`'s conflict branches (under refs/heads/)."""
    return f"refs/heads/{branch}-conflict-*"


def conflict_attempt(branch: str, name: str) -> int | None:
    """The attempt number when `name` is one of `branch`'s `conflict_branch`es, else None."""
    suffix = name.removeprefix(f"{branch}-conflict-")
    return int(suffix) if suffix != name and suffix.isdigit() else None


def attempt_branches(branch: str) -> str:
    """The `git for-each-ref` pattern of the earlier attempts `--retry-prp` kept
    (`<branch>-attempt-N`, under refs/heads/)."""
    return f"refs/heads/{branch}-attempt-*"


def kept_attempt(branch: str, name: str) -> bool:
    """Whether `name` is an attempt of `branch` kept aside: by the `rerun` conflict policy
    (`-conflict-N`) or by a retry (`-attempt-N`)."""
    suffix = name.removeprefix(f"{branch}-attempt-")
    retried = suffix != name and suffix.isdigit()
    return retried or conflict_attempt(branch, name) is not None


# Compiled once: names are made for every PRP of a batch, several times each.
_UNSAFE_IN_NAME = re.compile(r"[^a-z0-9._-]+")
_PRP_PREFIX = re.compile(r"^prp-", re.IGNORECASE)
_NOT_IN_SLUG = re.compile(r"[^a-z0-9]+")


def _bare_id(prp_id: str) -> str:
    return _PRP_PREFIX.sub("", prp_id.strip())


def _slug(text: str, limit: int | None = None) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_IN_SLUG.sub("-", ascii_text.lower()).strip("-")
    if limit is None or len(slug) <= limit:
        return slug
    # Cut at a word boundary unless that loses more than half of the room.
    head, dash, _ = slug[: limit + 1].rpartition("-")
    return head if dash and len(head) >= limit // 2 else slug[:limit].rstrip("-")


# -- commit subjects --------------------------------------------------------------------------


class Checkpoint(NamedTuple):
    prp_id: str
    phase: int
    title: str


class MergeSubject(NamedTuple):
    prp_id: str
    title: str


def checkpoint_subject(prp_id: str, phase: int, title: str) -> str:
    return f"{prp_id}: Phase {phase} - {title}"


def parse_checkpoint(subject: str) -> Checkpoint | None:
    match = CHECKPOINT_SUBJECT.match(subject)
    if match is None:
        return None
    return Checkpoint(match["id"], int(match["n"]), match["title"])


def merge_subject(prp_id: str, title: str) -> str:
    return f"Merge {prp_id}: {title}"


def parse_merge(subject: str) -> MergeSubject | None:
    match = _MERGE.match(subject)
    return None if match is None else MergeSubject(match["id"], match["title"])


def phases_done(subjects: Iterable[str], prp_id: str) -> set[int]:
    """The phases of `prp_id` with a checkpoint commit among `subjects`. Always by PRP id: a
    branch that merged another PRP's branch carries that PRP's checkpoints too."""
    return {
        checkpoint.phase
        for subject in subjects
        if (checkpoint := parse_checkpoint(subject)) is not None and checkpoint.prp_id == prp_id
    }
