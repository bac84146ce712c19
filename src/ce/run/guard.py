"""What happened outside the PRPs' worktrees that ce can see (issue 13, I4).

`ce` reports success only when every merge it made is still reachable from the target. Before
each stage review and before the end it also compares the repository with how the batch found
it: the branch the user's checkout is on, the files changed in it, the hooks and `.git/config`
— and the target's tip with the one ce itself left. What changed is said once, with the PRPs
that were running at the time (an agent may reach outside its worktree; ce cannot tell who).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ce import git
from ce.run.record import PrpRecord

# Keys `ce` itself sets in the shared config (sparse worktrees turn on per-worktree config).
_OWN_CONFIG = frozenset({"extensions.worktreeconfig", "core.repositoryformatversion"})


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    branch: str | None  # what the user's checkout has checked out
    changed: frozenset[str]  # `git status --porcelain` lines of the user's checkout
    hooks: str  # digest of the hook files
    config: frozenset[str]  # `git config --list` of the shared config, ce's own keys left out


def snapshot(repo: git.Repo) -> Snapshot:
    status = repo.git("status", "--porcelain=v1", "--untracked-files=normal").stdout
    listed = repo.git("config", "--file", str(repo.common_dir() / "config"), "--list").stdout
    return Snapshot(
        branch=repo.current_branch(),
        changed=frozenset(line for line in status.splitlines() if line),
        hooks=_hooks_digest(repo),
        config=frozenset(
            line for line in listed.splitlines() if line.split("=", 1)[0] not in _OWN_CONFIG
        ),
    )


def _hooks_digest(repo: git.Repo) -> str:
    directory = repo.hooks_dir(fresh=True)
    digest = hashlib.sha256()
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return ""
    for entry in entries:
        if entry.name.endswith(".sample") or not entry.is_file() or entry.is_symlink():
            continue
        digest.update(entry.name.encode() + b"\0")
        digest.update(entry.read_bytes()[: 1 << 20])
    return digest.hexdigest()


def differences(before: Snapshot, now: Snapshot) -> list[str]:
    """What changed in the user's repository, in words."""
    found = []
    if now.branch != before.branch:
        found.append(
            f"your checkout was switched from {before.branch or 'a detached HEAD'} "
            f"to {now.branch or 'a detached HEAD'}"
        )
    new = sorted(line[3:] for line in now.changed - before.changed)
    if new:
        found.append(f"files changed in your checkout: {', '.join(new[:10])}")
    if now.hooks != before.hooks:
        found.append("git hooks were added or changed")
    if now.config != before.config:
        added = sorted(now.config - before.config)
        found.append(f".git/config changed: {', '.join(added[:5]) or 'entries removed'}")
    return found


class Guard:
    """Compares the repository with how the batch found it, and the target with what ce left."""

    def __init__(self, repo: git.Repo, target: str) -> None:
        self.repo = repo
        self.ref = f"refs/heads/{target}"
        self.baseline: Snapshot | None = None
        self.tip: str | None = None  # where ce last left the target
        self.said: set[str] = set()
        self.pending: list[str] = []  # seen at a merge, said at the next check
        # The target's tip at the last check, and the merges found reachable from it: while the
        # tip only moves forward, they still are, so each check looks at the new merges only
        # (one git call per merge over the whole batch, not per merge per stage).
        self.checked_tip: str | None = None
        self.checked: set[str] = set()

    def lost(self, records: Iterable[PrpRecord]) -> list[str]:
        """The PRPs whose merge commit is no longer reachable from the target."""
        tip = self.repo.try_rev_parse(self.ref)
        merges = [(r.id, r.merged_as) for r in records if r.merged_as is not None]
        if tip is None:
            return [prp for prp, _ in merges]
        earlier = [] if self.checked_tip is None else [self.checked_tip]
        new = [merge for _, merge in merges if merge not in self.checked]
        gone = self.repo.unreachable([*earlier, *new], tip)
        if earlier and earlier[0] in gone:  # moved back: everything is looked at again
            self.checked = set()
            gone |= self.repo.unreachable([m for _, m in merges if m not in new], tip)
        lost = [prp for prp, merge in merges if merge in gone]
        if not lost:
            self.checked_tip = tip
            self.checked.update(merge for _, merge in merges)
        return lost

    def start(self) -> None:
        self.baseline = snapshot(self.repo)
        self.tip = self.repo.try_rev_parse(self.ref)

    def merged(self, onto: str, tip: str) -> None:
        """ce moved the target to `tip` with a merge made on top of `onto`, what it found."""
        if self.tip is not None and onto != self.tip:
            self.pending.append(self._moved(self.tip, onto))
        self.tip = tip

    def _moved(self, old: str, new: str) -> str:
        target = self.ref.removeprefix("refs/heads/")
        return f"{target} was moved outside ce (from {old[:10]} to {new[:10]})"

    def news(self) -> list[str]:
        """What changed outside the worktrees since the start, said once each."""
        if self.baseline is None:
            return []
        found = [*self.pending, *differences(self.baseline, snapshot(self.repo))]
        self.pending = []
        tip = self.repo.try_rev_parse(self.ref)
        if tip != self.tip and tip is not None and self.tip is not None:
            found.append(self._moved(self.tip, tip))
            self.tip = tip
        fresh = [line for line in found if line not in self.said]
        self.said.update(fresh)
        return fresh
