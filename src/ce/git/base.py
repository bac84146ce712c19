"""What every part of `Repo` stands on: a checkout's path, `git()` in it, and where it lives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

from ce.git._run import GitError, run_git
from ce.proc import Completed


class RepoBase:
    """A git checkout (the user's, or a worktree) and the one way to run git in it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._common_dir: Path | None = None
        self._git_dir: Path | None = None
        self._hooks_dir: Path | None = None
        self._checkouts: dict[Path, Self] = {}

    def __repr__(self) -> str:
        return f"Repo({str(self.path)!r})"

    def git(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float | None = None
    ) -> Completed:
        """Run `git <args>` here. Prefer a typed method; add one when a caller needs it."""
        return run_git(args, cwd=self.path, check=check, input=input, timeout=timeout)

    def _line(self, *args: str, input: str | None = None) -> str:
        return self.git(*args, input=input).stdout.rstrip("\n")

    def _answer(self, *args: str, meaning: tuple[int, ...] = (0, 1)) -> int:
        """The exit code of a command that answers with it; any other code raises."""
        completed = self.git(*args, check=False)
        if completed.returncode not in meaning:
            raise GitError.from_completed(completed)
        return completed.returncode

    def _absolute(self, path: Path) -> Path:
        return (self.path / path).absolute()

    def toplevel(self) -> Path:
        return Path(self._line("rev-parse", "--show-toplevel"))

    def common_dir(self) -> Path:
        """The absolute git dir shared by all worktrees (`.git` of the main checkout)."""
        if self._common_dir is None:
            found = self._line("rev-parse", "--path-format=absolute", "--git-common-dir")
            self._common_dir = Path(found)
        return self._common_dir

    def git_dir(self) -> Path:
        """This checkout's own git dir (`.git`, or a linked worktree's `.git/worktrees/<name>`),
        read from its `.git` as git does; git is asked only for other layouts (bare...)."""
        if self._git_dir is None:
            self._git_dir = _dot_git(self.path) or Path(
                self._line("rev-parse", "--path-format=absolute", "--git-dir")
            )
        return self._git_dir

    def git_path(self, name: str) -> Path:
        """The absolute path of `name` in this checkout's git dir (`index`, `HEAD`, ...)."""
        if name in _OWN_FILES:  # never shared between worktrees: no git process to say where
            return self.git_dir() / name
        return Path(self._line("rev-parse", "--path-format=absolute", "--git-path", name))

    def hooks_dir(self, *, fresh: bool = False) -> Path:
        """Where this checkout takes its hooks from (`core.hooksPath`, else `.git/hooks`); read
        once per `Repo` unless `fresh`."""
        if self._hooks_dir is None or fresh:
            configured = self.git("config", "--path", "--get", "core.hooksPath", check=False)
            path = Path(configured.stdout.strip() or self.common_dir() / "hooks")
            self._hooks_dir = path if path.is_absolute() else self.path / path
        return self._hooks_dir

    def checkout_at(self, path: Path) -> Self:
        """The checkout at `path` (this one or another worktree of it), the same object each
        time, so what it has read about itself (its git dir) is read once per run."""
        if path == self.path:
            return self
        if path not in self._checkouts:
            self._checkouts[path] = type(self)(path)
        return self._checkouts[path]

    def head_branch(self) -> str | bool | None:
        """HEAD read from its file: the ref it names (`refs/...`), None when detached, False
        when the file says neither plainly (another ref storage: ask git)."""
        try:
            text = (self.git_dir() / "HEAD").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        if text.startswith("ref: refs/") and text.endswith("\n") and "\n" not in text[:-1]:
            ref = text[5:-1]
            return ref if not ref.endswith("/.invalid") else False  # reftable's placeholder
        return None if _OBJECT_ID.fullmatch(text.rstrip("\n")) else False

    def bare_and_tip(self, ref: str) -> tuple[bool, str]:
        """Whether git takes this checkout for a bare repository, and what `ref` names: one
        process."""
        bare, tip = self._line(
            "rev-parse", "--is-bare-repository", "--verify", "--end-of-options", ref
        ).split("\n")
        return bare == "true", tip

    def is_bare(self) -> bool:
        return self._line("rev-parse", "--is-bare-repository") == "true"

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


# Files of a checkout's own git dir (never in the common dir, whatever the worktree layout).
_OWN_FILES = frozenset({"index", "index.lock", "HEAD"})
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _dot_git(path: Path) -> Path | None:
    """The git dir a checkout's `.git` names: the directory itself, or a `gitdir:` file's."""
    dot_git = path / ".git"
    try:
        if dot_git.is_dir():
            return dot_git.absolute()
        text = dot_git.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir: ") or not text.endswith("\n"):
        return None
    target = Path(text[len("gitdir: ") : -1])
    return (target if target.is_absolute() else path / target).absolute()
