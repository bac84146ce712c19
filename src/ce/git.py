"""The one git wrapper: every git command `ce` runs goes through here (and `proc.run`).

Git runs with the inherited `GIT_*` variables removed: inside a hook `GIT_DIR`,
`GIT_WORK_TREE` or `GIT_INDEX_FILE` would point it at another repository. `LC_ALL=C` keeps
its output parseable. Worktree and branch bookkeeping is serialized by a lock file in the git
common dir, because parallel `git worktree add` races on `.git/config`, on packed refs and on
the admin dirs under `.git/worktrees`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce.core.errors import CeError
from ce.proc import Completed, ProcessError, run

MIN_GIT = (2, 38)  # `git merge-tree --write-tree`
# Every git call has a time limit (a hook, a lock, a network mount must not hang a batch):
# generous, for pushes and worktree adds in large repositories; `CE_GIT_TIMEOUT` overrides it.
DEFAULT_TIMEOUT = 600.0
# For ce's own steps that need no hook (its integration worktree, its worktree adds, its
# checkpoint commits): a hook an agent installed must not run, let alone block the lane.
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")
LOCK_NAME = "ce-worktree.lock"

# After pre-commit's `no_git_env`: what may pass through is transport, config and identity.
_KEPT_GIT_VARS = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSL_CAINFO",
        "GIT_SSL_NO_VERIFY",
        "GIT_CONFIG_COUNT",
        "GIT_HTTP_PROXY",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_ALLOW_PROTOCOL",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
    }
)
_KEPT_GIT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_HEADS = "refs/heads/"


class GitError(ProcessError):
    """A git command failed: the message shows the command, its exit code and git's stderr."""


@dataclass(frozen=True, kw_only=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True, kw_only=True)
class MergeTreeResult:
    """A merge computed without a checkout: the tree when clean, else the conflicted paths."""

    tree: str | None
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.tree is not None


@dataclass(frozen=True, kw_only=True)
class WorktreeInfo:
    path: Path
    head: str | None  # None for a bare repository
    branch: str | None  # the full ref, as git reports it (`refs/heads/main`); None when detached
    detached: bool
    locked: bool
    prunable: bool


def git_env(environ: Mapping[str, str] | None = None, *, c_locale: bool = True) -> dict[str, str]:
    """The environment git runs with: `environ` (default: ours) without stray GIT_* variables,
    and (for output we parse) the C locale."""
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if _keep(name)}
    if c_locale:
        env["LC_ALL"] = "C"
    return env


def _keep(name: str) -> bool:
    return (
        not name.startswith("GIT_") or name in _KEPT_GIT_VARS or name.startswith(_KEPT_GIT_PREFIXES)
    )


def timeout_seconds() -> float:
    """The time limit of one git call: `CE_GIT_TIMEOUT` (seconds), else DEFAULT_TIMEOUT."""
    configured = os.environ.get("CE_GIT_TIMEOUT", "")
    try:
        return float(configured) if float(configured) > 0 else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _git(
    args: Sequence[str],
    *,
    cwd: Path | None,
    check: bool = True,
    input: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Completed:
    argv = ("git", *args)
    env = git_env() | dict(extra_env or {})
    try:
        completed = run(
            argv, cwd=cwd, env=env, check=False, input=input, timeout=timeout or timeout_seconds()
        )
    except ProcessError as exc:  # git missing, cwd gone, or out of time
        reason = exc.reason
        if reason and reason.startswith("timed out"):
            reason += " (CE_GIT_TIMEOUT=<seconds> raises the limit)"
        raise GitError(
            argv=exc.argv, returncode=exc.returncode, stderr=exc.stderr, reason=reason
        ) from exc
    if check and completed.returncode != 0:
        raise GitError.from_completed(completed)
    return completed


def require_git(min: tuple[int, ...] = MIN_GIT) -> tuple[int, ...]:
    """The installed git's version; a CeError when it is missing or older than `min`."""
    why = f"ce needs git >= {_dotted(min)} for `git merge-tree --write-tree`"
    try:
        output = _git(["--version"], cwd=None).stdout
    except GitError as exc:
        raise CeError(f"git could not be run ({exc.stderr.strip()}): {why}.") from exc
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", output)
    if match is None:
        raise CeError(f"cannot read the git version from {output.strip()!r}: {why}.")
    version = tuple(int(part) for part in match.groups(default="0"))
    if version < min:
        raise CeError(f"found git {_dotted(version)} at {shutil.which('git')}: {why}. Upgrade git.")
    return version


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def init_repo(path: Path, *, branch: str = "main", user: tuple[str, str] | None = None) -> Repo:
    """A new repository at `path` on `branch`; `user` = (name, email) as repo-local identity."""
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo(path)
    repo.git("init", "--quiet", f"--initial-branch={branch}")
    if user is not None:
        repo.git("config", "user.name", user[0])
        repo.git("config", "user.email", user[1])
    return repo


@functools.lru_cache(maxsize=4096)
def check_ref_format(branch: str) -> bool:
    """Whether `branch` is a valid branch name (`git check-ref-format --branch`)."""
    completed = _git(["check-ref-format", "--branch", branch], cwd=None, check=False)
    # Inside a repository `@{-1}` is "valid" and expands to another name: compare.
    return completed.returncode == 0 and completed.stdout.strip() == branch


def require_branch_name(branch: str) -> None:
    if not check_ref_format(branch):
        raise CeError(f"{branch!r} is not a valid git branch name (git check-ref-format).")


class Repo:
    """A git checkout (the user's, or a worktree) and the git commands `ce` runs in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._common_dir: Path | None = None

    def __repr__(self) -> str:
        return f"Repo({str(self.path)!r})"

    def git(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float | None = None
    ) -> Completed:
        """Run `git <args>` here. Prefer a typed method; add one when a caller needs it."""
        return _git(args, cwd=self.path, check=check, input=input, timeout=timeout)

    def _line(self, *args: str, input: str | None = None) -> str:
        return self.git(*args, input=input).stdout.rstrip("\n")

    def _answer(self, *args: str, meaning: tuple[int, ...] = (0, 1)) -> int:
        """The exit code of a command that answers with it; any other code raises."""
        completed = self.git(*args, check=False)
        if completed.returncode not in meaning:
            raise GitError.from_completed(completed)
        return completed.returncode

    # -- reading ---------------------------------------------------------------------------

    def toplevel(self) -> Path:
        return Path(self._line("rev-parse", "--show-toplevel"))

    def common_dir(self) -> Path:
        """The absolute git dir shared by all worktrees (`.git` of the main checkout)."""
        if self._common_dir is None:
            found = self._line("rev-parse", "--path-format=absolute", "--git-common-dir")
            self._common_dir = Path(found)
        return self._common_dir

    def rev_parse(self, rev: str) -> str:
        return self._line("rev-parse", "--verify", "--end-of-options", rev)

    def try_rev_parse(self, rev: str) -> str | None:
        """The object id `rev` names, or None when it names nothing."""
        completed = self.git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False
        )
        if completed.returncode == 1:
            return None
        if completed.returncode != 0:
            raise GitError.from_completed(completed)
        return completed.stdout.strip()

    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        completed = self.git("symbolic-ref", "--quiet", "HEAD", check=False)
        if completed.returncode == 1:
            return None
        if completed.returncode != 0:
            raise GitError.from_completed(completed)
        return completed.stdout.strip().removeprefix(_HEADS)

    def dirty_tracked(self) -> list[str]:
        """Tracked paths with uncommitted changes, staged or not; untracked files are ignored."""
        # --no-optional-locks: do not take index.lock in the user's checkout behind their back.
        output = self.git(
            "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no"
        ).stdout
        return sorted(set(_status_paths(output)))

    def branch_exists(self, name: str) -> bool:
        return self.try_rev_parse(_HEADS + name) is not None

    def check_ref_format(self, branch: str) -> bool:
        return check_ref_format(branch)

    def commits(self, base: str, head: str) -> list[Commit]:
        """Commits in `head` and not in `base`, oldest first."""
        output = self.git(
            "log", "--reverse", "--no-show-signature", "--format=%H %s",
            "--end-of-options", f"{base}..{head}", "--",
        ).stdout  # fmt: skip
        pairs = (line.partition(" ") for line in output.splitlines() if line)
        return [Commit(sha=sha, subject=subject) for sha, _, subject in pairs]

    def changed_files(self, base: str, head: str) -> list[str]:
        """Paths `head` changed since its merge-base with `base` (a rename: both names)."""
        output = self.git(
            "diff", "--name-only", "-z", "--no-renames", "--no-relative",
            "--end-of-options", f"{base}...{head}", "--",
        ).stdout  # fmt: skip
        return [path for path in output.split("\0") if path]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._answer("merge-base", "--is-ancestor", ancestor, descendant) == 0

    def merge_base(self, a: str, b: str) -> str:
        """The best common ancestor of `a` and `b`; GitError when they share no history."""
        completed = self.git("merge-base", "--end-of-options", a, b, check=False)
        if completed.returncode == 1 and not completed.stderr:
            raise GitError.from_completed(completed, reason="found no common ancestor")
        if completed.returncode != 0:
            raise GitError.from_completed(completed)
        return completed.stdout.strip()

    def ref_tips(self, patterns: Sequence[str]) -> dict[str, str]:
        """{refname: object id} for the refs matching `patterns`, in ONE git call.

        Patterns follow `git for-each-ref`: `refs/heads/prp-43-*`, or a prefix up to a slash.
        """
        if not patterns:
            return {}  # for-each-ref without patterns would list every ref
        output = self.git(
            "for-each-ref", "--format=%(objectname) %(refname)", "--end-of-options", *patterns
        ).stdout
        pairs = (line.partition(" ") for line in output.splitlines() if line)
        return {ref: sha for sha, _, ref in pairs}

    def ref_dates(self, refs: Sequence[str]) -> dict[str, float]:
        """{refname: committer time of its tip (Unix seconds)}, in one call; absent refs omitted."""
        if not refs:
            return {}
        output = self.git(
            "for-each-ref", "--format=%(committerdate:unix) %(refname)", "--end-of-options", *refs
        ).stdout
        pairs = (line.partition(" ") for line in output.splitlines() if line)
        return {ref: float(stamp) for stamp, _, ref in pairs if stamp}

    def find_first_parent_commit(self, rev: str, subject_prefix: str) -> str | None:
        """The newest commit on `rev`'s first-parent line whose subject starts with the prefix."""
        output = self.git(
            "log", "--first-parent", "--no-show-signature", "--format=%H %s",
            "--fixed-strings", f"--grep={subject_prefix}", "--end-of-options", rev, "--",
        ).stdout  # fmt: skip
        pairs = (line.partition(" ") for line in output.splitlines() if line)
        return next((sha for sha, _, subject in pairs if subject.startswith(subject_prefix)), None)

    def read_blob(self, rev: str, path: str) -> str | None:
        """The text of `path` (repo-relative) in commit `rev`, or None when it has no such file."""
        blob = self.try_rev_parse(f"{rev}:{path}")
        if blob is None:
            return None
        return self.git("cat-file", "blob", blob).stdout

    def tree_dirs(self, rev: str, paths: Sequence[str]) -> set[str]:
        """Those of `paths` (repo-relative) that are directories in commit `rev`, in one call."""
        if not paths:
            return set()
        listed = "".join(f"{rev}:{path}\n" for path in paths)
        output = self.git("cat-file", "--batch-check=%(objecttype)", input=listed).stdout
        kinds = output.splitlines()
        return {path for path, kind in zip(paths, kinds, strict=True) if kind == "tree"}

    def untracked_matching(self, patterns: Path) -> list[str]:
        """Untracked files (ignored ones too) matched by the gitignore-style `patterns` file."""
        output = self.git(
            "ls-files", "-z", "--others", "--ignored", f"--exclude-from={patterns}"
        ).stdout
        # A nested repository shows as `dir/`: it is not ours to copy.
        return [name for name in output.split("\0") if name and not name.endswith("/")]

    def ignored(self, paths: Sequence[str]) -> set[str]:
        """Those of `paths` (untracked, relative to this checkout) that git ignores."""
        if not paths:
            return set()
        listed = "".join(f"{path}\0" for path in paths)
        completed = self.git("check-ignore", "-z", "--stdin", input=listed, check=False)
        if completed.returncode not in (0, 1):
            raise GitError.from_completed(completed)
        return {path for path in completed.stdout.split("\0") if path}

    def is_ignored(self, path: str) -> bool:
        """Whether git ignores `path` (relative to this checkout)."""
        return self._answer("check-ignore", "--quiet", "--", path) == 0

    def worktrees(self) -> list[WorktreeInfo]:
        # Under the lock: a concurrent `worktree add` leaves half-written admin dirs that make
        # `worktree list` fail ("failed to read .git/worktrees/x/commondir").
        with self.worktree_lock():
            output = self.git("worktree", "list", "--porcelain", "-z").stdout
        return [_worktree_info(record) for record in output.split("\0\0") if record.strip("\0")]

    # -- merging without a checkout ----------------------------------------------------------

    def merge_tree(self, ours: str, theirs: str) -> MergeTreeResult:
        """Merge two commits in the object store only; the working tree is not touched."""
        completed = self.git(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs,
            check=False,
        )  # fmt: skip
        tree, *paths = completed.stdout.split("\0")
        # Exit 1 means "conflict" only with a tree: an unknown commit also exits 1.
        if completed.returncode not in (0, 1) or not _OID.fullmatch(tree):
            raise GitError.from_completed(completed)
        if completed.returncode == 0:
            return MergeTreeResult(tree=tree, conflicts=())
        return MergeTreeResult(tree=None, conflicts=tuple(dict.fromkeys(p for p in paths if p)))

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """A new commit object for `tree` (no ref moves)."""
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self._line("commit-tree", tree, *parent_args, "-F", "-", input=message)

    def update_ref(self, ref: str, new: str, old: str, *, message: str | None = None) -> bool:
        """Compare-and-swap `ref` from `old` to `new` (full object ids; all zeros: absent).

        False when the ref no longer equals `old`; any other failure raises.
        """
        if not ref.startswith("refs/"):
            raise ValueError(f"update_ref needs a full ref name (refs/...), got {ref!r}")
        reflog = ["-m", message] if message else []
        completed = self.git("update-ref", *reflog, ref, new, old, check=False)
        if completed.returncode == 0:
            return True
        expected = None if set(old) == {"0"} else old
        if self.try_rev_parse(ref) != expected:
            return False
        raise GitError.from_completed(completed)

    def tree_with_file(self, commit: str, path: str, text: str) -> str:
        """The tree of `commit` with `path` set to `text`; no checkout or index is touched."""
        blob = self._line("hash-object", "-w", "--no-filters", "--stdin", input=text)
        mode = self._mode(commit, path) or "100644"
        with tempfile.TemporaryDirectory(prefix="ce-index-") as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            _git(["read-tree", commit], cwd=self.path, extra_env=index)
            cacheinfo = f"{mode},{blob},{path}"
            _git(
                ["update-index", "--add", "--cacheinfo", cacheinfo], cwd=self.path, extra_env=index
            )
            return _git(["write-tree"], cwd=self.path, extra_env=index).stdout.strip()

    def _mode(self, commit: str, path: str) -> str | None:
        """The file mode of `path` in `commit` (100644, 100755, ...), or None when absent."""
        output = self.git("ls-tree", "-z", "--end-of-options", commit, "--", path).stdout
        return output.split(" ", 1)[0] if output else None

    def set_ref(self, ref: str, commit: str, message: str) -> None:
        """Point `ref` (refs/...) at `commit`, whatever it held (ce's own refs under refs/ce/)."""
        self.git("update-ref", "-m", message, ref, commit)

    def delete_refs(self, refs: Sequence[str]) -> None:
        """Delete `refs` in one call; absent ones are fine."""
        if refs:
            self.git("update-ref", "--stdin", input="".join(f"delete {ref}\n" for ref in refs))

    def changed_between(self, a: str, b: str) -> list[str]:
        """Paths that differ between commits `a` and `b` (no rename detection)."""
        output = self.git("diff", "--name-only", "-z", "--no-renames", a, b, "--").stdout
        return [path for path in output.split("\0") if path]

    def blob(self, rev: str, path: str) -> str | None:
        """The blob id of `path` in `rev`, or None when it has none."""
        return self.try_rev_parse(f"{rev}:{path}")

    def hash_file(self, path: str) -> str | None:
        """The blob id this checkout's file `path` would get (None: no such file)."""
        if not os.path.lexists(self.path / path):
            return None
        return self._line("hash-object", "--", path)

    def git_path(self, name: str) -> Path:
        """The absolute path of `name` in this checkout's git dir (`index`, `HEAD`, ...)."""
        return Path(self._line("rev-parse", "--path-format=absolute", "--git-path", name))

    def is_bare(self) -> bool:
        return self._line("rev-parse", "--is-bare-repository") == "true"

    def index_matches(self, tree: str) -> bool:
        """Whether the index holds exactly `tree` (what is staged; the files are not looked at)."""
        return self._answer("diff-index", "--cached", "--quiet", tree, "--") == 0

    def two_tree_checkout(
        self, old: str, new: str, index_file: Path, *, reset: bool = False
    ) -> Completed:
        """`read-tree -m -u old new` on `index_file`: the files here go from `old` to `new`
        like a checkout, refusing (and changing nothing) when a local change or an untracked
        file is in the way (`reset`: overwriting them). No hook runs."""
        mode = ["--reset"] if reset else ["-m"]
        return _git(
            [*NO_HOOKS, "read-tree", *mode, "-u", old, new],
            cwd=self.path,
            check=False,
            extra_env={"GIT_INDEX_FILE": str(index_file)},
        )

    def merge_ff_only(self, rev: str) -> None:
        """Fast-forward this checkout to `rev`; git refuses if local changes are in the way."""
        self.git("merge", "--ff-only", "--quiet", "--end-of-options", rev)

    # -- writing in a worktree ---------------------------------------------------------------

    def commit_all(self, message: str, *, allow_empty: bool = False) -> str | None:
        """Commit every change here (new files too) and return the new HEAD.

        None when nothing changed, unless `allow_empty` (a phase that changed nothing still
        gets its checkpoint commit).
        """
        self.git("add", "--all")
        if not allow_empty and self._answer("diff", "--cached", "--quiet") == 0:
            return None
        # --no-verify: this saves an agent's work; the user's hooks must not make us lose it
        # (ce validates the result itself).
        self.git(
            *NO_HOOKS, "commit", "--quiet", "--no-verify", "--allow-empty", "-F", "-", input=message
        )
        return self.rev_parse("HEAD")

    def commit_paths(self, paths: Sequence[str], message: str) -> str | None:
        """Commit only `paths` (repo-relative; new files too), leaving other changes alone.

        The new HEAD, or None when those paths have no changes.
        """
        if not paths:
            return None
        self.git("add", "--all", "--", *paths)
        if self._answer("diff", "--cached", "--quiet", "--", *paths) == 0:
            return None
        self.git(
            *NO_HOOKS, "commit", "--quiet", "--no-verify", "--only", "-F", "-", "--", *paths,
            input=message,
        )  # fmt: skip
        return self.rev_parse("HEAD")

    def upstream(self, branch: str) -> tuple[str, str] | None:
        """(remote, branch) that `branch` tracks, or None when it tracks nothing."""
        completed = self.git(
            "for-each-ref",
            "--format=%(upstream:remotename)%00%(upstream:remoteref)",
            "--end-of-options",
            _HEADS + branch,
        )
        remote, _, ref = completed.stdout.strip().partition("\0")
        if not remote or not ref.startswith(_HEADS):
            return None
        return remote, ref.removeprefix(_HEADS)

    def push(self, remote: str, commit: str, branch: str) -> str | None:
        """Push `commit` to `branch` on `remote`; None on success, else git's reason."""
        completed = self.git(
            "push", "--quiet", "--porcelain", remote, f"{commit}:{_HEADS}{branch}", check=False
        )
        if completed.returncode == 0:
            return None
        lines = (completed.stdout + completed.stderr).split("\n")
        return " ".join(line.strip() for line in lines if line.strip() and line.strip() != "Done")

    def rename_branch(self, old: str, new: str) -> None:
        require_branch_name(new)
        with self.worktree_lock():
            self.git("branch", "--move", "--", old, new)

    def has_changes(self) -> bool:
        """Whether anything here is uncommitted: tracked changes or untracked files."""
        return bool(self.git("status", "--porcelain=v1", "-z", "--untracked-files=all").stdout)

    def commit_tracked(self, paths: Sequence[str], message: str) -> str:
        """Commit the working-tree content of tracked `paths` only; returns the new HEAD."""
        self.git(
            *NO_HOOKS, "commit", "--quiet", "--no-verify", "--only", "-F", "-", "--", *paths,
            input=message,
        )  # fmt: skip
        return self.rev_parse("HEAD")

    def force_checkout_detached(self, commit: str) -> None:
        """Make this (integration) worktree exactly `commit`: local changes and untracked
        files are thrown away; ignored files (caches, virtualenvs) are kept."""
        self.git(*NO_HOOKS, "checkout", "--quiet", "--force", "--detach", commit)
        self.git("clean", "--quiet", "--force", "-d")

    # -- worktrees and branches (serialized) -------------------------------------------------

    @contextlib.contextmanager
    def worktree_lock(self) -> Iterator[None]:
        """Hold the repository's worktree lock (threads and processes alike)."""
        with (self.common_dir() / LOCK_NAME).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def add_worktree(
        self, path: Path, branch: str, base: str, *, sparse: Sequence[str] | None = None
    ) -> None:
        """A new worktree at `path` on a new branch `branch` started at `base`; with `sparse`,
        only those directories (and the root's files) are checked out.

        On failure the branch it created and the directory it made are removed.
        """
        require_branch_name(branch)
        target = self._absolute(path)
        no_checkout = [] if sparse is None else ["--no-checkout"]
        with self.worktree_lock(), self._undo_failed_add(target, branch):
            self.git(
                *NO_HOOKS, "worktree", "add", "--no-track", *no_checkout, "-b", branch, "--",
                str(target), base,
            )  # fmt: skip
            if sparse is not None:
                Repo(target)._check_out_sparse(sparse)

    def add_worktree_for_branch(
        self, path: Path, branch: str, *, sparse: Sequence[str] | None = None
    ) -> None:
        """A new worktree at `path` on the existing branch `branch` (resuming a PRP)."""
        require_branch_name(branch)
        target = self._absolute(path)
        no_checkout = [] if sparse is None else ["--no-checkout"]
        with self.worktree_lock(), self._undo_failed_add(target, None):
            self.git(*NO_HOOKS, "worktree", "add", *no_checkout, "--", str(target), branch)
            if sparse is not None:
                Repo(target)._check_out_sparse(sparse)

    def _check_out_sparse(self, directories: Sequence[str]) -> None:
        """Check out only `directories` (cone mode) in this new `--no-checkout` worktree.

        Under the worktree lock: the first `sparse-checkout` sets `extensions.worktreeConfig`
        in the shared config. Sparse checking out is then switched off again in this worktree:
        the files left out keep their skip-worktree bit (absent, not deleted), and new files
        anywhere can still be added, where an active sparse definition makes `git add` refuse
        paths outside it (and an agent's `git add -A` with them).
        """
        listed = "".join(f"{directory}\n" for directory in directories)
        self.git("sparse-checkout", "set", "--cone", "--stdin", input=listed)
        self.git(*NO_HOOKS, "read-tree", "-mu", "HEAD")
        self.git("config", "--worktree", "core.sparseCheckout", "false")

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        """A new worktree at `path` with HEAD detached at `commit` (the integration worktree)."""
        target = self._absolute(path)
        with self.worktree_lock(), self._undo_failed_add(target, None):
            self.git(*NO_HOOKS, "worktree", "add", "--detach", "--", str(target), commit)

    def remove_worktree(self, path: Path, force: bool = False) -> None:
        """Remove a worktree; `force` also drops its uncommitted changes."""
        forced = ["--force"] if force else []
        with self.worktree_lock():
            self.git("worktree", "remove", *forced, "--", str(self._absolute(path)))

    def prune_worktrees(self) -> None:
        """Forget worktrees whose directories are gone."""
        with self.worktree_lock():
            self.git("worktree", "prune")

    def delete_branches(self, names: Sequence[str]) -> None:
        """Delete local branches in one call; missing ones are fine, a checked-out one is not."""
        if not names:
            return
        with self.worktree_lock():
            completed = self.git("branch", "--delete", "--force", "--", *names, check=False)
        if completed.returncode == 0:
            return
        left = self.ref_tips([_HEADS + name for name in names])
        if any(_HEADS + name in left for name in names):
            raise GitError.from_completed(completed)

    def _absolute(self, path: Path) -> Path:
        return (self.path / path).absolute()

    @contextlib.contextmanager
    def _undo_failed_add(self, path: Path, new_branch: str | None) -> Iterator[None]:
        """Remove what a failed `worktree add` left: the directory, and the branch it made."""
        had_path = path.exists()
        had_branch = new_branch is None or self.branch_exists(new_branch)
        try:
            yield
        except BaseException:
            if not had_path:
                shutil.rmtree(path, ignore_errors=True)
            if not had_branch:
                self.git("branch", "--delete", "--force", "--", str(new_branch), check=False)
            raise


def _status_paths(porcelain_z: str) -> Iterator[str]:
    """Paths of `git status --porcelain=v1 -z` entries; a rename yields both names."""
    fields = iter(porcelain_z.split("\0"))
    for entry in fields:
        if not entry:
            continue
        yield entry[3:]
        if entry[0] in "RC" or entry[1] in "RC":
            yield next(fields)  # the name it had before


def _worktree_info(record: str) -> WorktreeInfo:
    """One record of `git worktree list --porcelain -z`."""
    fields = [field for field in record.split("\0") if field]
    attrs = {key: value for key, _, value in (field.partition(" ") for field in fields)}
    return WorktreeInfo(
        path=Path(attrs["worktree"]),
        head=attrs.get("HEAD"),
        branch=attrs.get("branch"),
        detached="detached" in attrs,
        locked="locked" in attrs,
        prunable="prunable" in attrs,
    )
