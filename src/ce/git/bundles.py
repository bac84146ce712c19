"""Git bundles: history shipped as one file (to and from the nodes of the Ray backend)."""

from __future__ import annotations

from pathlib import Path

from ce.git._run import run_git
from ce.git.base import RepoBase


class BundleCommands(RepoBase):
    """Commits packed into a bundle, fetched from one, and the checkout moved to them."""

    def create_bundle(self, path: Path, *revs: str) -> None:
        """`revs` as `git rev-list` reads them: `refs/heads/x` (all of it) or `HEAD ^<sha>`
        (what is beyond a commit the other side has)."""
        self.git("bundle", "create", "--quiet", str(path), *revs)

    def fetch_bundle(self, path: Path, ref: str = "HEAD") -> None:
        """The bundle's objects into this repository (its `ref` in FETCH_HEAD, no ref moved)."""
        self.git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", str(path), ref)

    def move_checkout(self, sha: str) -> None:
        """The checked-out branch, its index and files to `sha` (`reset --keep`: refused, not
        lost, if a file here changed)."""
        self.git("reset", "--quiet", "--keep", sha)


def clone_bundle(bundle: Path, path: Path, branch: str) -> None:
    """A new checkout at `path` of `branch` from `bundle`, with no remote left behind."""
    run_git(["clone", "--quiet", "--branch", branch, str(bundle), str(path)], cwd=None)
    run_git(["remote", "remove", "origin"], cwd=path)
