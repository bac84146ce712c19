"""Which PRP files a run is about: a batch (`--batch 43`), explicit paths or ids, and the PRPs
outside the run that its dependencies name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ce.core.errors import CeError
from ce.core.ids import is_safe_token, normalize_id
from ce.prp.model import Prp, StatusClass
from ce.prp.parse import parse_prp


@dataclass(frozen=True, kw_only=True)
class Discovery:
    batch_id: str
    runnable: tuple[Prp, ...]  # status READY, in file order
    skipped: tuple[Prp, ...]  # DONE (they satisfy dependencies) and NOT_RUNNABLE
    warnings: tuple[str, ...]  # findings of the discovery itself

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """The discovery's warnings, then each PRP's own."""
        per_prp = (w for prp in (*self.runnable, *self.skipped) for w in prp.warnings)
        return (*self.warnings, *per_prp)


def discover_batch(prp_dir: Path, batch: str) -> Discovery:
    """The PRPs `PRP-<batch>.*.md` of `prp_dir` (not `PRP-<batch>-INITIAL*`)."""
    batch_id = batch_token(batch)
    pattern = prp_dir / f"PRP-{batch_id}.*.md"
    paths = batch_files(prp_dir, batch_id)
    if not paths:
        raise CeError(
            f"no PRP files match {pattern}: {_batches_there(prp_dir)}; check the batch "
            "number, or point `prp_dir` (in .ce/config.toml or [tool.ce] of pyproject.toml) at "
            "the directory that holds the batch's PRP files."
        )
    prps = _parse_all(paths)
    _check_unique_ids(prps)
    warnings = [
        f"{prp.path}: declares batch_id {prp.batch_id}, but it matched {pattern}."
        for prp in prps
        if prp.batch_id is not None and prp.batch_id != batch_id
    ]
    warnings += [
        f"{prp.path}: {prp.id} is skipped: its status is `{prp.status}`."
        for prp in prps
        if prp.status_class is StatusClass.NOT_RUNNABLE
    ]
    return Discovery(
        batch_id=batch_id,
        runnable=tuple(prp for prp in prps if prp.status_class is StatusClass.READY),
        skipped=tuple(prp for prp in prps if prp.status_class is not StatusClass.READY),
        warnings=tuple(warnings),
    )


def batch_files(prp_dir: Path, batch: str) -> list[Path]:
    """The files `PRP-<batch>.*.md` of `prp_dir`, in natural order."""
    batch_id = batch_token(batch)
    return [path for path in _markdown_files(prp_dir) if _in_batch(path.name, batch_id)]


def batch_of(path: Path) -> str | None:
    """The batch a file's name puts it in (`PRP-43.2.1-x.md`: 43), or None."""
    match = re.match(r"prp-([^.]+)\.", path.name.lower())
    if match is None or not _in_batch(path.name, match[1]):
        return None
    return path.name[4 : 4 + len(match[1])]


def prp_files(prp_dir: Path) -> list[Path]:
    """Every file of `prp_dir` that belongs to a batch, in natural order."""
    return [path for path in _markdown_files(prp_dir) if batch_of(path) is not None]


def resolve_prps(args: Sequence[str], prp_dir: Path, cwd: Path) -> tuple[Prp, ...]:
    """The PRPs named on the command line, as paths (relative to `cwd`) or ids."""
    catalog = _Catalog(prp_dir)
    by_path: dict[Path, Prp] = {}
    for arg in args:
        prp = _resolve_one(arg, prp_dir, cwd, catalog)
        if prp.status_class is StatusClass.NOT_RUNNABLE:
            raise CeError(
                f"{prp.path}: {prp.id} has status `{prp.status}`, so it cannot run; set "
                "`status: planning` in its frontmatter to run it."
            )
        by_path.setdefault(prp.path.resolve(), prp)
    prps = tuple(by_path.values())
    _check_unique_ids(prps)
    return prps


def find_external(prp_dir: Path, ids: Iterable[str]) -> dict[str, Prp]:
    """The PRPs with these ids in `prp_dir` (file name first, then frontmatter); missing ids and
    unreadable unrelated files are left out."""
    if not prp_dir.is_dir():
        return {}
    catalog = _Catalog(prp_dir)
    found: dict[str, Prp] = {}
    for raw in ids:
        prp_id = normalize_id(raw)
        if prp_id is None or prp_id in found:
            continue
        named = [prp for prp in _named_like(prp_dir, prp_id, strict=False) if prp.id == prp_id]
        matches = named or catalog.with_id(prp_id)
        if matches:
            found[prp_id] = matches[0]
    return found


def _resolve_one(arg: str, prp_dir: Path, cwd: Path, catalog: _Catalog) -> Prp:
    if _looks_like_path(arg):
        return parse_prp(_existing_file(arg, prp_dir, cwd))
    prp_id = normalize_id(arg)
    if prp_id is None:
        raise CeError(
            f"{arg!r} is neither a PRP file nor a PRP id: name a file (PRPs/.../PRP-43.2.1-x.md) "
            "or an id (PRP-43.2.1 or 43.2.1)."
        )
    matches = [prp for prp in _named_like(prp_dir, prp_id, strict=True) if prp.id == prp_id]
    matches = matches or catalog.with_id(prp_id)
    if not matches:
        raise CeError(
            f"{prp_id} not found: there is no {prp_dir / prp_id}-*.md or {prp_dir / prp_id}.md, "
            f"and no PRP file in {prp_dir} has `prp_id: {prp_id}`. Check the id, or give the "
            "file's path."
        )
    if len(matches) > 1:
        raise CeError(f"{prp_id} is ambiguous: {_files(matches)} all have this id; give a path.")
    return matches[0]


def _looks_like_path(arg: str) -> bool:
    return "/" in arg or "\\" in arg or arg.lower().endswith(".md")


def _existing_file(arg: str, prp_dir: Path, cwd: Path) -> Path:
    candidates = [cwd / arg]
    if not Path(arg).is_absolute() and len(Path(arg).parts) == 1:
        candidates.append(prp_dir / arg)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " and ".join(str(candidate) for candidate in candidates)
    raise CeError(f"{arg}: no such PRP file (looked for {looked}); check the path.")


def _named_like(prp_dir: Path, prp_id: str, *, strict: bool) -> list[Prp]:
    """PRPs whose file name is `<id>.md` or `<id>-*.md`; `strict` reports unparsable ones."""
    lowered = prp_id.lower()
    prps = []
    for path in _markdown_files(prp_dir):
        name = path.name.lower()
        if name == f"{lowered}.md" or name.startswith(f"{lowered}-"):
            try:
                prps.append(parse_prp(path))
            except CeError:
                if strict:
                    raise
    return prps


class _Catalog:
    """Every parsable PRP of a directory by id, read once and only when needed."""

    def __init__(self, prp_dir: Path) -> None:
        self._prp_dir = prp_dir

    def with_id(self, prp_id: str) -> list[Prp]:
        return self._by_id.get(prp_id, [])

    @cached_property
    def _by_id(self) -> dict[str, list[Prp]]:
        by_id: dict[str, list[Prp]] = {}
        for path in _markdown_files(self._prp_dir):
            try:
                prp = parse_prp(path)
            except CeError:
                continue  # unrelated or broken files do not stop a lookup
            by_id.setdefault(prp.id, []).append(prp)
        return by_id


def batch_token(batch: str) -> str:
    token = str(batch).strip()
    if token[:4].lower() == "prp-":
        token = token[4:]
    if not is_safe_token(token):
        raise CeError(
            f"--batch {batch!r} is not a batch id: write the batch number, e.g. --batch 43 "
            "(letters, digits, '.', '_' and '-' only)."
        )
    return token


def _batches_there(prp_dir: Path) -> str:
    """`the batches in PRPs/feature-requests are 43, 47`: what `--batch` could have been."""
    found = dict.fromkeys(b for b in map(batch_of, _markdown_files(prp_dir)) if b is not None)
    if not found:
        return f"{prp_dir} holds no PRP-<batch>.*.md file"
    if len(found) == 1:
        return f"the only batch in {prp_dir} is {next(iter(found))}"
    return f"the batches in {prp_dir} are {', '.join(found)}"


def _in_batch(name: str, batch_id: str) -> bool:
    prefix = f"prp-{batch_id}.".lower()
    lowered = name.lower()
    if not (lowered.startswith(prefix) and lowered.endswith(".md")):
        return False
    middle = lowered[len(prefix) : -len(".md")]  # the `*` of PRP-43.*.md
    return bool(middle) and not middle.startswith("initial")


def _markdown_files(prp_dir: Path) -> list[Path]:
    """The .md files of `prp_dir`, in natural order (PRP-43.2.1 before PRP-43.10.1)."""
    if not prp_dir.is_dir():
        raise CeError(
            f"the PRP directory {prp_dir} does not exist: create it, or point `prp_dir` "
            "(in .ce/config.toml or [tool.ce] of pyproject.toml) at your PRP files."
        )
    try:
        # The directory's entries say which are files (a stat only for a link): not a stat of
        # each of 10,000 PRP files. `len > 3`: a file named `.md` has no suffix, as in pathlib.
        with os.scandir(prp_dir) as entries:
            paths = [
                prp_dir / entry.name
                for entry in entries
                if entry.name.lower().endswith(".md") and len(entry.name) > 3 and entry.is_file()
            ]
    except OSError as exc:
        raise CeError(f"cannot list the PRP directory {prp_dir}: {exc.strerror or exc}.") from None
    return sorted(paths, key=lambda path: (_natural_key(path.name), path.name))


_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[tuple[int, str], ...]:
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part)
        for part in _DIGITS.split(name.lower())
        if part
    )


def _parse_all(paths: Sequence[Path]) -> list[Prp]:
    """Parse every file; all failures are reported together."""
    prps, problems = [], []
    for path in paths:
        try:
            prps.append(parse_prp(path))
        except CeError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise CeError(problems[0])
    if problems:
        raise CeError(f"{len(problems)} PRP files cannot be read:\n" + "\n".join(problems))
    return prps


def _check_unique_ids(prps: Iterable[Prp]) -> None:
    by_id: dict[str, list[Prp]] = {}
    for prp in prps:
        by_id.setdefault(prp.id, []).append(prp)
    for prp_id, same in by_id.items():
        if len(same) > 1:
            raise CeError(
                f"{prp_id} is the id of several PRP files: {_files(same)}; give each PRP "
                "its own `prp_id`."
            )


def _files(prps: Iterable[Prp]) -> str:
    return ", ".join(str(prp.path) for prp in prps)
