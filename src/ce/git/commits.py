"""History and commits: what a branch holds, what it changed, and committing a worktree."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ce.git._run import NO_HOOKS, GitError
from ce.git.base import RepoBase

# `git commit`'s summary line, unabbreviated: `[main (root-commit) <sha>] subject`.
_LOG_HEADER = re.compile(r"commit ([0-9a-f]{40}|[0-9a-f]{64})")
_SUMMARY = re.compile(r"\[[^\n]*? ([0-9a-f]{40}|[0-9a-f]{64})\] ")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# ce's own commits (checkpoints of an agent's leftovers, the status commit): no hooks, and
# never signed, as its plumbing commits (merges, the ignore entry) are not: a user who signs
# must not have a batch fail for a key the test or CI machine lacks.
_OWN_COMMIT = (*NO_HOOKS, "commit", "--quiet", "--no-verify", "--no-gpg-sign")


@dataclass(frozen=True, kw_only=True)
class Commit:
    sha: str
    subject: str


class CommitCommands(RepoBase):
    """The git commands that read history and write commits."""

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

    def first_parent_changes(self, base: str, tip: str) -> dict[str, list[str]]:
        """{commit: paths it changed against its first parent} for every commit from `base`
        to `tip` along first parents (a merge: what it brought to the branch), in ONE call."""
        output = self.git(
            "log", "--no-show-signature", "--first-parent", "--diff-merges=first-parent",
            "--name-only", "--no-renames", "--no-relative", "-z", "--format=commit %H",
            "--end-of-options", f"{base}..{tip}", "--",
        ).stdout  # fmt: skip
        changes: dict[str, list[str]] = {}
        paths: list[str] = []
        for token in output.split("\0"):
            header = _LOG_HEADER.fullmatch(token.lstrip("\n"))
            if header is not None:
                paths = changes.setdefault(header.group(1), [])
            elif token:
                paths.append(token.removeprefix("\n"))  # the first path follows a newline
        return changes

    def changed_between(self, a: str, b: str) -> list[str]:
        """Paths that differ between commits `a` and `b` (no rename detection)."""
        output = self.git("diff", "--name-only", "-z", "--no-renames", a, b, "--").stdout
        return [path for path in output.split("\0") if path]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._answer("merge-base", "--is-ancestor", ancestor, descendant) == 0

    def unreachable(self, commits: Sequence[str], ref: str) -> set[str]:
        """The `commits` that `ref` does not reach (or that are gone): one process for all of
        them (what rev-list lists from them but not from `ref` includes each that is not an
        ancestor), one per commit only when one of them is not there to be listed."""
        wanted = [commit for commit in dict.fromkeys(commits) if _OBJECT_ID.fullmatch(commit)]
        listed = self.git("rev-list", *wanted, "--not", ref, "--", check=False)
        if listed.returncode == 0:
            found = set(listed.stdout.split())
            named = {commit for commit in commits if commit not in wanted}  # not an object id
            return {c for c in commits if c in found} | {
                c for c in named if not self._reaches(ref, c)
            }
        return {commit for commit in commits if not self._reaches(ref, commit)}

    def _reaches(self, ref: str, commit: str) -> bool:
        try:
            return self.is_ancestor(commit, ref)
        except GitError:
            return False  # the commit itself is gone

    def merge_base(self, a: str, b: str) -> str:
        """The best common ancestor of `a` and `b`; GitError when they share no history."""
        completed = self.git("merge-base", "--end-of-options", a, b, check=False)
        if completed.returncode == 1 and not completed.stderr:
            raise GitError.from_completed(completed, reason="found no common ancestor")
        if completed.returncode != 0:
            raise GitError.from_completed(completed)
        return completed.stdout.strip()

    def find_first_parent_commit(self, rev: str, subject_prefix: str) -> str | None:
        """The newest commit on `rev`'s first-parent line whose subject starts with the prefix."""
        output = self.git(
            "log", "--first-parent", "--no-show-signature", "--format=%H %s",
            "--fixed-strings", f"--grep={subject_prefix}", "--end-of-options", rev, "--",
        ).stdout  # fmt: skip
        pairs = (line.partition(" ") for line in output.splitlines() if line)
        return next((sha for sha, _, subject in pairs if subject.startswith(subject_prefix)), None)

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """A new commit object for `tree` (no ref moves)."""
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self._line(
            "commit-tree", "--no-gpg-sign", tree, *parent_args, "-F", "-", input=message
        )

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
        self.git(*_OWN_COMMIT, "--allow-empty", "-F", "-", input=message)
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
        self.git(*_OWN_COMMIT, "--only", "-F", "-", "--", *paths, input=message)
        return self.rev_parse("HEAD")

    def signing_failure(self) -> str | None:
        """Why a commit made here with the user's settings cannot be signed (`commit.gpgsign`
        is on and git's signing program fails: no key), or None. A real signing attempt, on
        the failure path only; the object it may make is never referenced."""
        signs = self.git("config", "--type=bool", "--get", "commit.gpgsign", check=False)
        if signs.stdout.strip() != "true":
            return None
        tried = self.git("commit-tree", "-S", "HEAD^{tree}", "-m", "ce: signing check", check=False)
        if tried.returncode == 0:
            return None
        lines = [line.removeprefix("error: ") for line in tried.stderr.splitlines() if line]
        return lines[0] if lines else f"exit code {tried.returncode}"

    def commit_tracked(self, paths: Sequence[str], message: str) -> str:
        """Commit the working-tree content of tracked `paths` only; returns the new HEAD."""
        # Unabbreviated, the summary line (`[branch 1f3e...] subject`) names the new commit:
        # no `rev-parse HEAD` after it.
        output = self.git(
            *NO_HOOKS, "-c", "core.abbrev=no", "commit", "--no-verify", "--no-gpg-sign", "--only",
            "-F", "-", "--", *paths, input=message,
        ).stdout  # fmt: skip
        named = _SUMMARY.match(output)
        return named.group(1) if named else self.rev_parse("HEAD")
