"""Files: what a checkout has changed or ignores, and blobs and trees in the object store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ce.git._run import GitError, run_git
from ce.git.base import RepoBase


class FileCommands(RepoBase):
    """The git commands on a checkout's files and on blobs and trees."""

    def dirty_tracked(self) -> list[str]:
        """Tracked paths with uncommitted changes, staged or not; untracked files are ignored."""
        # --no-optional-locks: do not take index.lock in the user's checkout behind their back.
        output = self.git(
            "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no"
        ).stdout
        return sorted(set(_status_paths(output)))

    def has_changes(self) -> bool:
        """Whether anything here is uncommitted: tracked changes or untracked files."""
        return bool(self.git("status", "--porcelain=v1", "-z", "--untracked-files=all").stdout)

    def uncommitted(self) -> tuple[bool, bool]:
        """(anything uncommitted here: tracked changes or untracked files, anything ignored),
        from one `git status`."""
        output = self.git(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching"
        ).stdout
        fields = iter(output.split("\0"))
        changed = ignored = False
        for field in fields:
            if field.startswith("!! "):
                ignored = True
            elif field:
                changed = True
                if "R" in field[:2] or "C" in field[:2]:
                    next(fields, None)  # a rename's or copy's source path follows
        return changed, ignored

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

    def tracked(self, paths: Sequence[str]) -> set[str]:
        """Those of `paths` (relative to this checkout) that git tracks."""
        if not paths:
            return set()
        output = self.git("--literal-pathspecs", "ls-files", "-z", "--", *paths).stdout
        return {name for name in output.split("\0") if name}

    def is_ignored(self, path: str) -> bool:
        """Whether git ignores `path` (relative to this checkout)."""
        return self._answer("check-ignore", "--quiet", "--", path) == 0

    def index_matches(self, tree: str) -> bool:
        """Whether the index holds exactly `tree` (what is staged; the files are not looked at)."""
        return self._answer("diff-index", "--cached", "--quiet", tree, "--") == 0

    def read_blob(self, rev: str, path: str) -> str | None:
        """The text of `path` (repo-relative) in commit `rev`, or None when it has no such file."""
        blob = self.try_rev_parse(f"{rev}:{path}")
        if blob is None:
            return None
        return self.git("cat-file", "blob", blob).stdout

    def blob(self, rev: str, path: str) -> str | None:
        """The blob id of `path` in `rev`, or None when it has none."""
        return self.try_rev_parse(f"{rev}:{path}")

    def hash_file(self, path: str) -> str | None:
        """The blob id this checkout's file `path` would get (None: no such file)."""
        if not os.path.lexists(self.path / path):
            return None
        return self._line("hash-object", "--", path)

    def tree_dirs(self, rev: str, paths: Sequence[str]) -> set[str]:
        """Those of `paths` (repo-relative) that are directories in commit `rev`, in one call."""
        if not paths:
            return set()
        listed = "".join(f"{rev}:{path}\n" for path in paths)
        output = self.git("cat-file", "--batch-check=%(objecttype)", input=listed).stdout
        kinds = output.splitlines()
        return {path for path, kind in zip(paths, kinds, strict=True) if kind == "tree"}

    def tree_with_file(self, commit: str, path: str, text: str) -> str:
        """The tree of `commit` with `path` set to `text`; no checkout or index is touched."""
        blob = self._line("hash-object", "-w", "--no-filters", "--stdin", input=text)
        mode = self._mode(commit, path) or "100644"
        with tempfile.TemporaryDirectory(prefix="ce-index-") as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            run_git(["read-tree", commit], cwd=self.path, extra_env=index)
            cacheinfo = f"{mode},{blob},{path}"
            run_git(
                ["update-index", "--add", "--cacheinfo", cacheinfo], cwd=self.path, extra_env=index
            )
            return run_git(["write-tree"], cwd=self.path, extra_env=index).stdout.strip()

    def _mode(self, commit: str, path: str) -> str | None:
        """The file mode of `path` in `commit` (100644, 100755, ...), or None when absent."""
        output = self.git("ls-tree", "-z", "--end-of-options", commit, "--", path).stdout
        return output.split(" ", 1)[0] if output else None


def _status_paths(porcelain_z: str) -> Iterator[str]:
    """Paths of `git status --porcelain=v1 -z` entries; a rename yields both names."""
    fields = iter(porcelain_z.split("\0"))
    for entry in fields:
        if not entry:
            continue
        yield entry[3:]
        if entry[0] in "RC" or entry[1] in "RC":
            yield next(fields)  # the name it had before
