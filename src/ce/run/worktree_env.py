"""What a PRP's worktree gets besides its files: the user's local files, a setup command, its
own block of ports; for large repositories, only the paths its PRP works on (sparse).

- `.worktreeinclude` (gitignore syntax, at the repository root) names ignored files of the
  user's checkout (`.env`, local settings) copied into each new worktree. Files the worktree
  already has are never overwritten; files git does not ignore are not copied (an agent's
  `git add --all` would commit them).
- `setup = "uv sync"` runs in each new worktree before its agent, split like shlex, never
  through a shell; its output goes to the PRP's log. A failure fails the PRP.
- `CE_PORT_BASE`: the first of `ports_per_prp` ports of its own (in plan order), so that dev
  servers of parallel agents do not clash.
- `sparse = true`: the worktree checks out (cone mode) the directories of the PRP's declared
  paths, its own file's directory and `sparse_always`; the root's files are always there.

A worktree is prepared once: a marker in its git admin dir (removed with the worktree) says so,
so a resumed run prepares a worktree it re-creates and leaves alone one it adopts as it is.

Validated means committed (I3): what is untracked or ignored right after preparing (the
included files, what `setup` made) is the environment, recorded beside the marker;
`committed_only` moves anything else untracked or ignored (an agent's generated files) out of
the worktree while the checks run, and puts it back after. Nothing is deleted.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ce import git, proc
from ce.config import Config
from ce.core.errors import CeError
from ce.core.paths import cone, is_literal, normalize_path
from ce.fsio import append_log
from ce.git.fence import admin_dir
from ce.prp.model import Prp
from ce.secrets import log_filter

INCLUDE_FILE = ".worktreeinclude"
READY_MARKER = "ce-prepared"
ENVIRONMENT_LIST = "ce-environment"  # beside the marker: the untracked files ce prepared
ASIDE_DIR = "aside"  # in the PRP's scratch directory: files kept out of validation
LANE_SCRATCH = "ce-scratch"  # the integration worktree's, in its git admin dir
_MAX_PORT = 65535


@dataclass(frozen=True, kw_only=True)
class WorktreeSettings:
    """What preparing a worktree takes from a run: its settings, the user's checkout, the
    batch, and the plan's order (each PRP's block of ports is its place in it)."""

    config: Config
    root: Path  # the user's checkout: `.worktreeinclude` files are copied from it
    batch_id: str
    order: tuple[str, ...]

    @cached_property
    def _slots(self) -> Mapping[str, int]:
        return {prp_id: slot for slot, prp_id in enumerate(self.order)}

    def slot(self, prp_id: str) -> int:
        return self._slots[prp_id]


def port_base(settings: WorktreeSettings, prp_id: str) -> int:
    """The first port of this PRP's block: by its place in the plan, so stable within a run."""
    return _block(settings.config, settings.slot(prp_id))


def _block(config: Config, slot: int) -> int:
    blocks = max(1, (_MAX_PORT + 1 - config.worktrees.port_base) // config.worktrees.ports_per_prp)
    return config.worktrees.port_base + (slot % blocks) * config.worktrees.ports_per_prp


def variables(settings: WorktreeSettings, prp_id: str) -> dict[str, str]:
    """What ce adds to the environment of everything it runs in the PRP's worktree."""
    return {"CE_PORT_BASE": str(port_base(settings, prp_id))}


def lane_variables(settings: WorktreeSettings, worktree: int = 0) -> dict[str, str]:
    """For the merge lane's checks (the stage reviews, and the merged trees in the lane's
    `worktree`-th integration worktree): the blocks after the PRPs' blocks."""
    return {"CE_PORT_BASE": str(_block(settings.config, len(settings.order) + worktree))}


def prepare(
    settings: WorktreeSettings,
    prp: Prp,
    worktree: Path,
    *,
    log_path: Path,
    on_group: Callable[[int | None], None],
    fresh: bool = False,
) -> str | None:
    """Copy the included files and run `setup` in a worktree not prepared yet.

    Returns why it failed (the PRP fails with it), or None. `on_group` is told the setup's
    process group while it runs, so that an interrupted batch can stop it. `fresh`: the
    worktree was just checked out, so nothing in it is untracked until ce copies or sets up.
    """
    marker = admin_dir(worktree) / READY_MARKER
    if marker.exists():
        return None
    copied, refused = copy_included(settings.root, worktree)
    if copied:
        _log_line(log_path, f"[ce] {INCLUDE_FILE}: copied {_listing(copied)}")
    if refused:
        why = "git does not ignore them, so they would be committed"
        _log_line(log_path, f"[ce] {INCLUDE_FILE}: not copied ({why}): {_listing(refused)}")
    config = settings.config
    if config.worktrees.setup.strip():
        error = run_setup(
            config.worktrees.setup,
            worktree,
            env=setup_environment(settings, prp.id, worktree),
            log_path=log_path,
            timeout_minutes=config.run.timeout_minutes,
            grace=config.monitor.grace_seconds,
            on_group=on_group,
        )
        if error is not None:
            return error
    record_environment(worktree, empty=fresh and not copied and not config.worktrees.setup.strip())
    marker.write_text(f"{prp.id}\n", encoding="utf-8")
    return None


def record_environment(worktree: Path, *, empty: bool = False) -> None:
    """Remember what is untracked or ignored now (just prepared): the environment ce made;
    `empty` when the caller knows there is nothing (no git process then)."""
    listed = "" if empty else "".join(f"{name}\0" for name in _untracked(worktree))
    (admin_dir(worktree) / ENVIRONMENT_LIST).write_text(listed, encoding="utf-8")


def _untracked(worktree: Path) -> list[str]:
    """Untracked files, ignored ones too; a directory with nothing tracked in it as `dir/`."""
    output = git.Repo(worktree).git("ls-files", "-z", "--others", "--directory").stdout
    return [name for name in output.split("\0") if name]


@contextlib.contextmanager
def committed_only(worktree: Path, scratch: Path, *, bare: bool = False) -> Iterator[list[str]]:
    """While the block runs (validation), the worktree holds its committed files and the
    environment ce prepared, nothing else: other untracked or ignored files wait in
    `scratch/aside`, and come back after (a file a check made meanwhile wins; the other stays
    in `scratch/aside`). Yields what was moved. A worktree prepared without a record: no-op.
    `bare`: the caller just saw nothing untracked or ignored in it (no git process then)."""
    record = admin_dir(worktree) / ENVIRONMENT_LIST
    for left in scratch.glob(f"{ASIDE_DIR}*"):  # by a run killed during validation
        _put_back(left, worktree, _listed(left))
    if not record.is_file():
        yield []
        return
    aside = _empty_dir(scratch)
    prepared = set(record.read_text(encoding="utf-8").split("\0"))
    moved = [] if bare else [name for name in _untracked(worktree) if name not in prepared]
    try:
        _move(worktree, aside, moved)
        yield moved
    finally:
        _put_back(aside, worktree, moved)


def committed_only_in_lane(worktree: Path) -> contextlib.AbstractContextManager[list[str]]:
    """`committed_only` for the lane's integration worktree, which has no PRP's scratch
    directory: what is set aside waits in the worktree's git admin dir."""
    return committed_only(worktree, admin_dir(worktree) / LANE_SCRATCH)


def _empty_dir(scratch: Path) -> Path:
    """`scratch/aside`, or `aside-2`, ... when files that could not go back are in it."""
    for number in range(1, 1000):
        aside = scratch / (ASIDE_DIR if number == 1 else f"{ASIDE_DIR}-{number}")
        if not _listed(aside):
            return aside
    raise CeError(f"{scratch} is full of files set aside during validation: look at them")


def _listed(aside: Path) -> list[str]:
    if not aside.is_dir():
        return []
    files = (path for path in aside.rglob("*") if path.is_symlink() or not path.is_dir())
    return [str(path.relative_to(aside)) for path in files]


def _move(source: Path, target: Path, names: Sequence[str]) -> None:
    for name in (name.rstrip("/") for name in names):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source / name, target / name)


def _put_back(aside: Path, worktree: Path, names: Sequence[str]) -> None:
    back = [n for n in names if os.path.lexists(aside / n.rstrip("/"))]
    _move(aside, worktree, [n for n in back if not os.path.lexists(worktree / n.rstrip("/"))])


def _listing(names: Sequence[str], most: int = 20) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def setup_environment(settings: WorktreeSettings, prp_id: str, worktree: Path) -> dict[str, str]:
    """The setup command's environment: ours (without stray GIT_* variables) and the PRP's."""
    own = {"CE_PRP_ID": prp_id, "CE_BATCH_ID": settings.batch_id, "CE_WORKTREE": str(worktree)}
    return git.git_env(c_locale=False) | variables(settings, prp_id) | own


def copy_included(root: Path, worktree: Path) -> tuple[list[str], list[str]]:
    """Copy the ignored files of `root` matched by its `.worktreeinclude` into `worktree`.

    Returns (copied, refused): a matched file git does not ignore is refused, because the
    agent's `git add --all` would commit it (and a merge publish it).
    """
    if not (root / INCLUDE_FILE).is_file():
        return [], []
    repo = git.Repo(root)
    matched = repo.untracked_matching(root / INCLUDE_FILE)
    ignored = repo.ignored(matched)
    copied = []
    for name in (name for name in matched if name in ignored):
        target = worktree / name
        if not _inside(target, worktree) or os.path.lexists(target):
            continue  # the worktree's own file wins; nothing is written outside it
        if not _copyable(root / name):
            continue  # a FIFO or a device: copying would block or fail
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target, follow_symlinks=False)
        copied.append(name)
    return copied, [name for name in matched if name not in ignored]


def included_files(root: Path) -> dict[str, bytes]:
    """The regular files `copy_included` copies, as bytes: for a checkout on another machine."""
    if not (root / INCLUDE_FILE).is_file():
        return {}
    repo = git.Repo(root)
    matched = repo.untracked_matching(root / INCLUDE_FILE)
    ignored = repo.ignored(matched)
    regular = (name for name in matched if name in ignored and _copyable(root / name))
    return {name: (root / name).read_bytes() for name in regular if not (root / name).is_symlink()}


def _copyable(path: Path) -> bool:
    """A regular file, or a symlink (copied as a symlink, never followed)."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.normpath(path)).is_relative_to(root)


def run_setup(
    command: str,
    worktree: Path,
    *,
    env: Mapping[str, str],
    log_path: Path,
    timeout_minutes: float,
    grace: float,
    on_group: Callable[[int | None], None],
) -> str | None:
    """Run the setup command like an agent (own process group, output in the log, bounded by
    the PRP's timeout); why it failed, or None."""
    argv = shlex.split(command)
    what = f"setup command `{command}`"
    _log_line(log_path, f"[ce] setup: {shlex.join(argv)}")
    try:
        child = proc.spawn_group(
            argv, cwd=worktree, env=env, log_path=log_path, output_filter=log_filter(env)
        )
    except proc.ProcessError as exc:
        _log_line(log_path, f"[ce] {exc}")
        return f"{what} could not start: {exc.stderr.strip()} (see {log_path})"
    on_group(child.pgid)
    try:
        code = child.wait(timeout_minutes * 60)
    finally:
        proc.stop_group(child, grace)
        on_group(None)
    if code is None:
        return f"{what} timed out after {timeout_minutes:g} min (see {log_path})"
    if code != 0:
        return f"{what} failed with exit code {code} (see {log_path})"
    return None


def _log_line(log_path: Path, line: str) -> None:
    append_log(log_path, f"{line}\n")


# -- sparse worktrees -------------------------------------------------------------------------


def sparse_dirs(settings: WorktreeSettings, prp: Prp, base: str) -> list[str] | None:
    """The directories a sparse worktree of `prp` checks out; None when worktrees are full."""
    if not settings.config.worktrees.sparse:
        return None
    declared = (*prp.files, *settings.config.worktrees.sparse_always)
    paths = [path for path in map(normalize_path, declared) if path]
    own = relpath(settings.root, prp)
    if own is not None:
        paths.append(own)  # its status is set to completed on its branch
    literal = [p for p in paths if is_literal(p)]
    return cone_dirs(paths, git.Repo(settings.root).tree_dirs(base, literal))


def relpath(root: Path, prp: Prp) -> str | None:
    """The PRP file's path in the repository at `root`; None for a file outside it."""
    return relpaths(root, [prp])[0]


def relpaths(root: Path, prps: Iterable[Prp]) -> list[str | None]:
    """`relpath` of each PRP, each directory resolved once rather than once per PRP in it (a
    linked file itself is resolved whole): a tenth of a 10k-PRP dry run otherwise."""
    directories: dict[Path, str] = {}
    found: list[str | None] = []
    for prp in prps:
        path = prp.path
        if path.is_symlink() or path.name in ("", ".", ".."):
            resolved = str(path.resolve())
        else:
            directory = directories.get(path.parent)
            if directory is None:
                directory = directories[path.parent] = str(path.parent.resolve())
            resolved = posixpath.join(directory, path.name)
        found.append(_relative(resolved, str(root)))
    return found


def _relative(path: str, root: str) -> str | None:
    """`Path(path).relative_to(root).as_posix()` for absolute POSIX paths, None outside
    `root`: as text, pathlib's objects cost more than the rest of a 10k-PRP check."""
    if path == root:
        return "."
    inside = root if root.endswith("/") else f"{root}/"
    return path[len(inside) :] if path.startswith(inside) else None


def cone_dirs(paths: Iterable[str], directories: set[str]) -> list[str] | None:
    """Cone-mode directories for repo-relative paths: a directory itself, a file's directory,
    a glob's literal leading directories (`ce.core.paths.cone`); None when a glob reaches
    everywhere (`**/*.py`), which only a full checkout shows. The root is always checked out,
    so never listed."""
    found = set()
    for path in paths:
        if not is_literal(path):
            folder = cone(path)
            if folder is None:
                return None
        elif path in directories:
            folder = path
        else:
            folder = posixpath.dirname(path)
        if folder:
            found.add(folder)
    return sorted(found)


def disk_usage(worktree: Path) -> int:
    """Bytes on disk of a worktree: its files and its admin dir (index, HEAD, logs)."""
    total = _tree_bytes(worktree)
    admin = admin_dir(worktree)
    if admin.is_dir() and not admin.is_relative_to(worktree):
        total += _tree_bytes(admin)
    return total


def _tree_bytes(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
    return total
