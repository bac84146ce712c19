"""Branch names, refs and remotes: reading tips, compare-and-swap updates, push."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from ce.core.errors import CeError
from ce.git._run import GitError, run_git
from ce.git.base import RepoBase
from ce.proc import Completed

HEADS = "refs/heads/"
# Words of [a-z0-9] joined by single dashes (what `ce.core.names.branch_name` makes): no rule of
# git-check-ref-format(1) can refuse such a name, so no git process is needed to say so.
_PLAIN_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@functools.lru_cache(maxsize=4096)
def check_ref_format(branch: str) -> bool:
    """Whether `branch` is a valid branch name (`git check-ref-format --branch`, unless it is
    plain dash-joined lowercase words and digits, valid by construction)."""
    if _PLAIN_NAME.fullmatch(branch):
        return True
    completed = run_git(["check-ref-format", "--branch", branch], cwd=None, check=False)
    # Inside a repository `@{-1}` is "valid" and expands to another name: compare.
    return completed.returncode == 0 and completed.stdout.strip() == branch


def require_branch_name(branch: str) -> None:
    if not check_ref_format(branch):
        raise CeError(f"{branch!r} is not a valid git branch name (git check-ref-format).")


class RefCommands(RepoBase):
    """The git commands on branches, refs and remotes."""

    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        head = self.head_branch()
        if head is None:
            return None
        if isinstance(head, str):
            return head.removeprefix(HEADS)
        completed = self.git("symbolic-ref", "--quiet", "HEAD", check=False)
        if completed.returncode == 1:
            return None
        if completed.returncode != 0:
            raise GitError.from_completed(completed)
        return completed.stdout.strip().removeprefix(HEADS)

    def branch_exists(self, name: str) -> bool:
        return self.try_rev_parse(HEADS + name) is not None

    def check_ref_format(self, branch: str) -> bool:
        return check_ref_format(branch)

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

    def update_ref(
        self,
        ref: str,
        new: str,
        old: str,
        *,
        message: str | None = None,
        delete: Sequence[str] = (),
    ) -> bool:
        """Compare-and-swap `ref` from `old` to `new` (full object ids; all zeros: absent),
        and delete the refs `delete` in the same transaction (all or nothing).

        False when the ref no longer equals `old`; any other failure raises.
        """
        if not ref.startswith("refs/"):
            raise ValueError(f"update_ref needs a full ref name (refs/...), got {ref!r}")
        reflog = ["-m", message] if message else []
        if delete:
            lines = [f"update {ref} {new} {old}\n", *(f"delete {d}\n" for d in delete)]
            completed = self.git(
                "update-ref", *reflog, "--stdin", input="".join(lines), check=False
            )
        else:
            completed = self.git("update-ref", *reflog, ref, new, old, check=False)
        return self._swapped(completed, ref, old)

    def delete_ref(self, ref: str, old: str) -> bool:
        """Delete `ref` if it still points at `old`; False when it does not (kept as it is)."""
        return self._swapped(self.git("update-ref", "-d", ref, old, check=False), ref, old)

    def _swapped(self, completed: Completed, ref: str, old: str) -> bool:
        """An update-ref's outcome: done, refused because `ref` no longer held `old` (False),
        or failed otherwise (raised)."""
        if completed.returncode == 0:
            return True
        expected = None if set(old) == {"0"} else old
        if self.try_rev_parse(ref) != expected:
            return False
        raise GitError.from_completed(completed)

    def set_ref(self, ref: str, commit: str, message: str) -> None:
        """Point `ref` (refs/...) at `commit`, whatever it held (ce's own refs under refs/ce/)."""
        self.git("update-ref", "-m", message, ref, commit)

    def set_refs(self, refs: Sequence[tuple[str, str]], message: str) -> None:
        """Point each ref at its commit, in one call (ce's own refs under refs/ce/)."""
        if refs:
            lines = "".join(f"update {ref} {commit}\n" for ref, commit in refs)
            self.git("update-ref", "-m", message, "--stdin", input=lines)

    def delete_refs(self, refs: Sequence[str]) -> None:
        """Delete `refs` in one call; absent ones are fine."""
        if refs:
            self.git("update-ref", "--stdin", input="".join(f"delete {ref}\n" for ref in refs))

    def upstream(self, branch: str) -> tuple[str, str] | None:
        """(remote, branch) that `branch` tracks, or None when it tracks nothing."""
        completed = self.git(
            "for-each-ref",
            "--format=%(upstream:remotename)%00%(upstream:remoteref)",
            "--end-of-options",
            HEADS + branch,
        )
        remote, _, ref = completed.stdout.strip().partition("\0")
        if not remote or not ref.startswith(HEADS):
            return None
        return remote, ref.removeprefix(HEADS)

    def push(self, remote: str, commit: str, branch: str) -> str | None:
        """Push `commit` to `branch` on `remote`; None on success, else git's reason."""
        completed = self.git(
            "push", "--quiet", "--porcelain", remote, f"{commit}:{HEADS}{branch}", check=False
        )
        if completed.returncode == 0:
            return None
        lines = (completed.stdout + completed.stderr).split("\n")
        return " ".join(line.strip() for line in lines if line.strip() and line.strip() != "Done")
