"""What every part of `Repo` stands on: a checkout's path, `git()` in it, and where it lives."""

from __future__ import annotations

from pathlib import Path

from ce.git._run import GitError, run_git
from ce.proc import Completed


class RepoBase:
    """A git checkout (the user's, or a worktree) and the one way to run git in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._common_dir: Path | None = None

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

    def git_path(self, name: str) -> Path:
        """The absolute path of `name` in this checkout's git dir (`index`, `HEAD`, ...)."""
        return Path(self._line("rev-parse", "--path-format=absolute", "--git-path", name))

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
