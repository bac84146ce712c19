"""Sparse worktrees: only the PRP's paths are checked out, and the merged result is the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import CONFIG, Spec, append, git, write
from ce.cli import run
from ce.git import Repo
from conftest import make_repo

BIG_FILES = 120


def _populate(root: Path) -> None:
    for n in range(BIG_FILES):
        path = root / "big" / f"d{n % 10}" / f"f{n}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{n}\n" * 200, encoding="utf-8")
    for name in ("src/a/one.py", "src/b/two.py", "docs/existing.md", "pyproject.toml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"# {name}\n", encoding="utf-8")


def test_a_sparse_worktree_checks_out_only_its_directories(repo: Path) -> None:
    _populate(repo)
    checkout = Repo(repo)
    base = checkout.commit_all("content")
    assert base is not None
    worktree = repo.parent / "wt"

    checkout.add_worktree(worktree, "prp-1-sparse", base, sparse=["src/a"])

    files = sorted(str(p.relative_to(worktree)) for p in worktree.rglob("*") if p.is_file())
    assert files == [".git", "README.md", "pyproject.toml", "src/a/one.py"]
    wt = Repo(worktree)
    assert not wt.has_changes()  # what is left out is not "deleted"
    (worktree / "tools").mkdir()
    (worktree / "tools" / "new.py").write_text("x = 1\n", encoding="utf-8")
    (worktree / "src" / "a" / "one.py").write_text("# changed\n", encoding="utf-8")
    head = wt.commit_all("outside the cone too")  # an agent's `git add --all` works anywhere
    assert head is not None
    assert wt.changed_files(base, head) == ["src/a/one.py", "tools/new.py"]
    assert not wt.has_changes()
    checkout.remove_worktree(worktree)
    assert not worktree.exists()

    checkout.add_worktree_for_branch(worktree, "prp-1-sparse", sparse=["docs"])
    assert (worktree / "docs" / "existing.md").is_file()
    assert not (worktree / "tools").exists()
    assert not (worktree / "src" / "a").exists()
    assert not Repo(worktree).has_changes()
    assert Repo(worktree).tree_dirs("HEAD", ["docs", "pyproject.toml", "nope", "src/a"]) == {
        "docs",
        "src/a",
    }


SPECS = [
    Spec(
        id="PRP-7.1",
        title="New module",
        phases=[
            [
                write("src/a/new.py", "A = 1"),
                '{ ls big 2>/dev/null || true; } | wc -l > "$CE_TEST_SEEN/7.1"',
            ]
        ],
        files=["src/a/new.py"],
    ),
    Spec(
        id="PRP-7.2",
        title="Docs",
        phases=[[write("docs/guide.md", "guide")], [append("docs/existing.md", "more")]],
        files=["docs/*.md"],
    ),
    Spec(
        id="PRP-7.3",
        title="Outside its paths",
        phases=[[append("src/b/two.py", "B = 2"), write("tools/tool.py", "T = 3")]],
        files=["src/b/two.py"],
    ),
    Spec(
        id="PRP-7.4",
        title="Builds on 7.1",
        deps=["PRP-7.1"],
        phases=[[append("src/a/new.py", "A2 = 2"), append("pyproject.toml", "# 7.4")]],
        files=["src/a/new.py", "pyproject.toml"],
    ),
]


def _batch_repo(root: Path, sparse: bool) -> Path:
    make_repo(root)
    (root / ".gitignore").write_text(".ce/\n", encoding="utf-8")  # the config stays untracked
    _populate(root)
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for spec in SPECS:
        (prp_dir / f"{spec.id}-x.md").write_text(spec.markdown("7"), encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "content")
    top = 'sparse = true\nsparse_always = ["src/b"]\n' if sparse else ""
    drift = "[validate]\ndrift_threshold = 100\n"  # PRP-7.3 writes outside its declared paths
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(top + CONFIG + drift, encoding="utf-8")
    return root


def _run_batch(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, object]:
    seen = repo.parent / "seen"
    seen.mkdir()
    monkeypatch.setenv("CE_TEST_SEEN", str(seen))
    monkeypatch.chdir(repo)
    code = run(["batch-exe", "--batch", "7", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary: dict[str, object] = json.loads(out.out)
    summary["seen"] = (seen / "7.1").read_text(encoding="utf-8").strip()
    return summary


def test_sparse_worktrees_merge_the_same_result_as_full_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    full_repo = _batch_repo(tmp_path / "full" / "repo", sparse=False)
    sparse_repo = _batch_repo(tmp_path / "sparse" / "repo", sparse=True)
    assert git(full_repo, "rev-parse", "HEAD^{tree}") == git(
        sparse_repo, "rev-parse", "HEAD^{tree}"
    )

    full = _run_batch(full_repo, monkeypatch, capsys)
    sparse = _run_batch(sparse_repo, monkeypatch, capsys)

    assert git(full_repo, "rev-parse", "main^{tree}") == git(
        sparse_repo, "rev-parse", "main^{tree}"
    )
    assert (full["seen"], sparse["seen"]) == (str(10), "0")  # big/ was not checked out
    assert git(sparse_repo, "show", "main:tools/tool.py") == "T = 3"
    assert "status: completed" in git(
        sparse_repo, "show", "main:PRPs/feature-requests/PRP-7.1-x.md"
    )
    full_disk = full["prps"]["PRP-7.1"]["disk_bytes"]  # type: ignore[index]
    sparse_disk = sparse["prps"]["PRP-7.1"]["disk_bytes"]  # type: ignore[index]
    assert 0 < sparse_disk < full_disk / 4, (sparse_disk, full_disk)
