"""`ce lint`: every problem a run would meet in PRP files, found without running anything.

Each file is parsed on its own (so every broken file is reported, not the first), then each
batch the files belong to is planned as a run would plan it: the planner's errors (unknown or
cyclic dependencies, duplicate ids) and its warnings are the run's own, not re-derived here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce import git
from ce.config import load_config
from ce.core.errors import CeError
from ce.prp.discover import batch_files, batch_of, prp_files, resolve_prps
from ce.prp.model import Prp, StatusClass
from ce.prp.parse import parse_prp
from ce.run.load import RunOptions, plan_request
from ce.run.repository import open_repository
from ce.run.tracked import untracked_message, untracked_prps


class Severity(enum.Enum):
    ERROR = "error"  # a run would refuse it (exit 2) or silently do something else
    WARNING = "warning"  # a run would warn about it
    INFO = "info"  # allowed, said: keys ce does not read


@dataclass(frozen=True, kw_only=True)
class Finding:
    severity: Severity
    message: str


@dataclass(frozen=True, kw_only=True)
class LintReport:
    files: int
    findings: tuple[Finding, ...]

    def count(self, severity: Severity) -> int:
        return sum(finding.severity is severity for finding in self.findings)


def lint(cwd: Path, *, batch: str | None, prps: Sequence[str]) -> LintReport:
    """Lint a batch, the named PRP files or ids, or (neither given) every batch's files."""
    if batch is not None and prps:
        raise CeError("Give either --batch N or PRP paths/ids, not both.")
    repo, root = open_repository(cwd)
    prp_dir = _shown(root / load_config(root, {}).prp_dir, cwd)
    findings: list[Finding] = []
    paths = _paths(prp_dir, cwd, batch=batch, prps=prps, findings=findings)
    parsed, broken = _parse_each(paths, findings)
    findings += _untracked(repo, root, repo.current_branch() or "HEAD", parsed)
    for name in _batches(prp_dir, paths, broken):
        findings += _planned(prp_dir, cwd, name, about=paths)
    ordered = sorted(dict.fromkeys(findings), key=lambda f: list(Severity).index(f.severity))
    return LintReport(files=len(paths), findings=tuple(ordered))


def _batches(prp_dir: Path, paths: Sequence[Path], broken: Sequence[Path]) -> list[str]:
    """The batches to plan: those of the files in the PRP directory (what `--batch N` finds
    there; an example elsewhere that pre-commit passes is checked on its own), and only when
    all their files parse (each broken one is reported already)."""
    home = prp_dir.resolve()
    names = dict.fromkeys(batch_of(path) for path in paths if path.resolve().parent == home)
    failed = {batch_of(path) for path in broken}
    return [name for name in names if name is not None and name not in failed]


def _shown(path: Path, cwd: Path) -> Path:
    """Paths as the user would type them: relative to where ce was run, when inside it."""
    try:
        return path.relative_to(cwd.resolve())
    except ValueError:
        return path


def _paths(
    prp_dir: Path, cwd: Path, *, batch: str | None, prps: Sequence[str], findings: list[Finding]
) -> list[Path]:
    if batch is not None:
        found = batch_files(prp_dir, batch)
        if not found:
            raise CeError(f"no PRP files match {prp_dir / f'PRP-{batch}.*.md'}: check --batch.")
        return found
    if not prps:
        return prp_files(prp_dir)
    paths: dict[Path, None] = {}
    for arg in prps:
        path = _named(arg, prp_dir, cwd)
        if isinstance(path, Finding):
            findings.append(path)
        else:
            paths.setdefault(path)
    return list(paths)


def _named(arg: str, prp_dir: Path, cwd: Path) -> Path | Finding:
    """A file given by path (as pre-commit passes them) or by id."""
    if (cwd / arg).is_file():
        return _shown(cwd / arg, cwd)
    try:
        return resolve_prps([arg], prp_dir, cwd)[0].path
    except CeError as exc:
        return Finding(severity=Severity.ERROR, message=str(exc))


def _parse_each(paths: Iterable[Path], findings: list[Finding]) -> tuple[list[Prp], list[Path]]:
    parsed, broken = [], []
    for path in paths:
        try:
            prp = parse_prp(path)
        except CeError as exc:
            findings.append(Finding(severity=Severity.ERROR, message=str(exc)))
            broken.append(path)
            continue
        parsed.append(prp)
        findings += [Finding(severity=Severity.WARNING, message=w) for w in prp.warnings]
        findings += [Finding(severity=Severity.INFO, message=note) for note in _notes(prp)]
    return parsed, broken


def _notes(prp: Prp) -> list[str]:
    """What is allowed but worth knowing."""
    notes = []
    if not prp.files:
        notes.append(
            f"{prp.path}: no `files_modified` declared: drift is not checked and overlaps with "
            "other PRPs are not planned for."
        )
    if prp.extra:
        keys = ", ".join(f"`{key}`" for key in prp.extra)
        notes.append(f"{prp.path}: keys ce does not read, kept as they are: {keys}.")
    return notes


def _untracked(repo: git.Repo, root: Path, target: str, prps: Sequence[Prp]) -> list[Finding]:
    runnable = [prp for prp in prps if prp.status_class is StatusClass.READY]
    untracked = untracked_prps(repo, root, runnable)
    if not untracked:
        return []
    return [Finding(severity=Severity.ERROR, message=untracked_message(untracked, target))]


def _planned(prp_dir: Path, cwd: Path, batch: str, *, about: Sequence[Path]) -> list[Finding]:
    """What planning the batch as a run says: its error, or its warnings about these files."""
    try:
        planned = plan_request(RunOptions(batch=batch), prp_dir, cwd)
    except CeError as exc:
        return [Finding(severity=Severity.ERROR, message=str(exc))]
    named = tuple(f"{path}:" for path in about)
    return [
        Finding(severity=Severity.WARNING, message=warning)
        for warning in (*planned.warnings, *planned.plan.warnings)
        if warning.startswith(named)
    ]
