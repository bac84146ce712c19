"""Build real repositories with real PRP batches for engine tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV_CONFIG = ("-c", "user.name=ce test", "-c", "user.email=test@example.invalid")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_ENV_CONFIG, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass(frozen=True, kw_only=True)
class Spec:
    """One PRP of a test batch: each phase is a list of bash blocks."""

    id: str
    title: str
    phases: Sequence[Sequence[str]]
    deps: Sequence[str] = ()
    files: Sequence[str] = ()
    status: str = "planning"
    order: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def markdown(self, batch: str) -> str:
        deps = "[" + ", ".join(f'"{d}"' for d in self.deps) + "]"
        files = "".join(f"\n  - {f}" for f in self.files) or " []"
        lines = [
            "---",
            f"prp_id: {self.id}",
            f"title: {self.title}",
            f"status: {self.status}",
            f"batch_id: {batch}",
            f"dependencies: {deps}",
            f"files_modified:{files}",
        ]
        if self.order is not None:
            lines.append(f"order: {self.order}")
        lines += [f"{k}: {v}" for k, v in self.extra.items()]
        lines += ["---", "", f"# {self.title}", "", "## Implementation", ""]
        for number, blocks in enumerate(self.phases, start=1):
            lines += [f"### Phase {number}: Step {number}", ""]
            for block in blocks:
                lines += ["```bash run", textwrap.dedent(block).strip(), "```", ""]
        return "\n".join(lines) + "\n"


CONFIG = """\
executor = "script"
[monitor]
poll_seconds = 0.2
"""


def make_batch_repo(
    root: Path, specs: Sequence[Spec], *, batch: str = "7", config: str = CONFIG
) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "ce test")
    git(root, "config", "user.email", "test@example.invalid")
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for spec in specs:
        name = f"PRP-{spec.id.removeprefix('PRP-')}-{spec.title.lower().replace(' ', '-')}.md"
        (prp_dir / name).write_text(spec.markdown(batch), encoding="utf-8")
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(config, encoding="utf-8")
    (root / "README.md").write_text("test repo\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def conflicting_pair() -> list[Spec]:
    """PRP-7.1.1 and PRP-7.1.2 both write same.txt without declaring it: a real merge conflict."""
    return [
        Spec(
            id=f"PRP-7.1.{n}",
            title=word,
            phases=[[write(f"{n}.txt", word), write("same.txt", word)]],
            files=[f"{n}.txt"],
        )
        for n, word in ((1, "One"), (2, "Two"))
    ]


def write(path: str, text: str) -> str:
    """A bash block writing `text` to `path`."""
    return f"mkdir -p \"$(dirname {path})\"\nprintf '%s\\n' '{text}' > {path}"


def append(path: str, text: str) -> str:
    return f"printf '%s\\n' '{text}' >> {path}"


def assert_merged_once(repo: Path, prp_ids: Sequence[str]) -> None:
    """Every PRP merged into main exactly once (by merge subject), and nothing left behind:
    no worktree, branch or directory beside the repository."""
    subjects = git(repo, "log", "--format=%s", "main").splitlines()
    for prp_id in prp_ids:
        assert sum(s.startswith(f"Merge {prp_id}:") for s in subjects) == 1, (prp_id, subjects)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--format=%(refname:short)") == "main"
    assert sorted(p.name for p in repo.parent.iterdir()) == [repo.name]


_TAKE_INDEX_LOCK = """\
import sys
from ce import git
from ce.run.index_lock import IndexLock
checkout, ref, old, new = sys.argv[1:]
assert IndexLock(git.Repo(checkout), {"ref": ref, "old": old, "new": new}).take()
print("taken", flush=True)
sys.stdin.read()
"""


def hold_index_lock(
    checkout: Path, old: str, new: str, *, ref: str = "refs/heads/main"
) -> subprocess.Popen[str]:
    """A process that takes the checkout's index lock the way ce's advance does (owner record
    and all) and holds it until its stdin closes; `kill_holder` it to leave what a `ce` killed
    -9 under the lock leaves."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _TAKE_INDEX_LOCK, str(checkout), ref, old, new],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "taken\n"
    return holder


def kill_holder(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait()
    for stream in (holder.stdin, holder.stdout):
        if stream is not None:
            stream.close()


def killed_under_index_lock(checkout: Path, old: str, new: str) -> None:
    """What a `ce` killed -9 while holding the checkout's index lock leaves."""
    kill_holder(hold_index_lock(checkout, old, new))
