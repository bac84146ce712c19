"""git: the wrapper against real repositories in temporary directories."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ce.core.errors import CeError
from ce.git import (
    LOCK_NAME,
    Commit,
    GitError,
    Repo,
    check_ref_format,
    git_env,
    init_repo,
    require_git,
)
from ce.proc import ProcessError, spawn_group, stop_group
from conftest import make_repo

ZERO = "0" * 40
_MAIN = "refs/heads/main"
_FEATURE = "refs/heads/feature"


def _commit(repo: Repo, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = repo.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    sha = repo.commit_all(message)
    assert sha is not None
    return sha


def _snapshot(repo: Repo) -> tuple[list[str], str, list[str]]:
    """What a merge must not change in the user's checkout: files, HEAD, directory listing."""
    return repo.dirty_tracked(), repo.rev_parse("HEAD"), sorted(p.name for p in repo.path.iterdir())


def _branch(repo: Repo, name: str, files: dict[str, str], message: str = "work") -> str:
    """Commit `files` on a new branch `name` off the current HEAD, then go back."""
    start = repo.current_branch()
    assert start is not None
    repo.git("switch", "--quiet", "-c", name)
    sha = _commit(repo, files, message)
    repo.git("switch", "--quiet", start)
    return sha


# -- environment and version -------------------------------------------------------------------


def test_git_env_drops_stray_git_variables_and_keeps_the_allowed_ones() -> None:
    env = git_env(
        {
            "PATH": "/bin",
            "GIT_DIR": "/elsewhere/.git",
            "GIT_WORK_TREE": "/elsewhere",
            "GIT_INDEX_FILE": "/elsewhere/index",
            "GIT_SSH_COMMAND": "ssh -i key",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.pager",
            "GIT_CONFIG_VALUE_0": "cat",
            "GIT_AUTHOR_NAME": "A",
            "GIT_COMMITTER_EMAIL": "c@example.invalid",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "de_DE.UTF-8",
        }
    )
    assert env == {
        "PATH": "/bin",
        "GIT_SSH_COMMAND": "ssh -i key",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "core.pager",
        "GIT_CONFIG_VALUE_0": "cat",
        "GIT_CONFIG_KEY_1": "maintenance.auto",  # after the user's own pairs
        "GIT_CONFIG_VALUE_1": "false",
        "GIT_AUTHOR_NAME": "A",
        "GIT_COMMITTER_EMAIL": "c@example.invalid",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }


def test_a_git_dir_from_a_hook_does_not_misdirect(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    ours = Repo(repo)
    assert ours.toplevel() == repo.resolve()
    sha = _commit(ours, {"a.txt": "a\n"}, "ours")
    assert ours.rev_parse("HEAD") == sha
    assert Repo(other).try_rev_parse("HEAD~1") is None  # untouched: only its initial commit
    assert not (other / "a.txt").exists()


def test_require_git_returns_the_version() -> None:
    version = require_git()
    assert version >= (2, 38)
    assert len(version) == 3


def test_require_git_names_the_found_version_and_the_reason() -> None:
    found = ".".join(str(part) for part in require_git())
    with pytest.raises(CeError, match=rf"found git {found} .*merge-tree --write-tree"):
        require_git(min=(99, 0))


def test_require_git_without_git_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CeError, match="git could not be run"):
        require_git()


def test_git_errors_carry_command_exit_code_and_stderr(repo: Path) -> None:
    with pytest.raises(GitError) as caught:
        Repo(repo).rev_parse("no-such-rev")
    error = caught.value
    assert isinstance(error, ProcessError)
    assert error.returncode == 128
    assert error.argv[:2] == ("git", "rev-parse")
    assert "git rev-parse --verify --end-of-options no-such-rev" in str(error)
    assert "exit code 128" in str(error)
    assert "Needed a single revision" in error.stderr


def test_git_in_a_missing_directory_is_a_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        Repo(tmp_path / "missing").toplevel()


# -- reading -----------------------------------------------------------------------------------


def test_init_repo(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "new", branch="trunk", user=("N", "n@example.invalid"))
    assert repo.git("symbolic-ref", "HEAD").stdout.strip() == "refs/heads/trunk"
    assert repo.git("config", "user.email").stdout.strip() == "n@example.invalid"


def test_toplevel_common_dir_and_rev_parse(repo: Path) -> None:
    (repo / "sub").mkdir()
    r = Repo(repo / "sub")  # any directory of the checkout will do
    assert r.toplevel() == repo.resolve()
    assert r.common_dir() == (repo / ".git").resolve()
    head = r.rev_parse("HEAD")
    assert len(head) == 40
    assert r.rev_parse("main") == head
    assert r.try_rev_parse("refs/heads/main") == head
    assert r.try_rev_parse("nope") is None
    assert r.try_rev_parse("-v") is None  # never read as an option


def test_head_and_own_files_are_read_from_the_git_dir_as_git_reads_them(repo: Path) -> None:
    """The checked-out branch and the index's path, read without a git process, agree with
    git's answers: in the main checkout, a subdirectory, a linked worktree, detached."""
    main = Repo(repo)
    linked = repo.parent / "linked"
    main.git("worktree", "add", "-q", "-b", "side", str(linked))
    for checkout, branch in ((main, "main"), (Repo(repo / "sub"), "main"), (Repo(linked), "side")):
        if checkout.path.name == "sub":
            checkout.path.mkdir()
        assert checkout.current_branch() == branch
        asked = checkout.git("rev-parse", "--path-format=absolute", "--git-path", "index")
        assert checkout.git_path("index") == Path(asked.stdout.strip())
    Repo(linked).git("switch", "-q", "--detach")
    assert Repo(linked).current_branch() is None
    assert main.checkout_at(linked) is main.checkout_at(linked)


def test_unreachable_names_the_commits_a_ref_does_not_reach_in_one_call(repo: Path) -> None:
    r = Repo(repo)
    first = r.rev_parse("HEAD")
    side = _branch(r, "side", {"s.txt": "s"})
    second = _commit(r, {"m.txt": "m"}, "two")
    assert r.unreachable([first, second], "refs/heads/main") == set()
    assert r.unreachable([first, side, second], "refs/heads/main") == {side}
    assert r.unreachable([first, "f" * 40], "refs/heads/main") == {"f" * 40}  # gone


def test_try_rev_parse_outside_a_repository_raises(tmp_path: Path) -> None:
    with pytest.raises(GitError):
        Repo(tmp_path).try_rev_parse("HEAD")


def test_current_branch(repo: Path) -> None:
    r = Repo(repo)
    assert r.current_branch() == "main"
    r.git("checkout", "--quiet", "--detach")
    assert r.current_branch() is None


def test_dirty_tracked_sees_staged_and_unstaged_changes_only_to_tracked_files(repo: Path) -> None:
    r = Repo(repo)
    _commit(r, {"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n", "d d.txt": "d\n"}, "files")
    assert r.dirty_tracked() == []
    (repo / "untracked.txt").write_text("new\n")
    assert r.dirty_tracked() == []
    (repo / "a.txt").write_text("changed\n")  # unstaged
    (repo / "b.txt").write_text("staged\n")
    r.git("add", "b.txt")
    r.git("mv", "c.txt", "renamed.txt")  # staged rename: both names
    (repo / "d d.txt").unlink()
    assert r.dirty_tracked() == ["a.txt", "b.txt", "c.txt", "d d.txt", "renamed.txt"]


def test_branch_exists(repo: Path) -> None:
    r = Repo(repo)
    _branch(r, "feature", {"f.txt": "f\n"})
    assert r.branch_exists("feature")
    assert r.branch_exists("main")
    assert not r.branch_exists("nope")
    assert not r.branch_exists("featur")


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("prp-43-2-1-add-login", True),
        ("feature/x", True),
        ("a b", False),
        ("-leading-dash", False),
        ("a..b", False),
        ("x.lock", False),
        ("ends/", False),
        ("tilde~1", False),
        ("star*", False),
        ("@{-1}", False),
        ("", False),
    ],
)
def test_check_ref_format(repo: Path, name: str, valid: bool) -> None:
    assert check_ref_format(name) is valid
    assert Repo(repo).check_ref_format(name) is valid


def test_check_ref_format_does_not_accept_what_git_would_expand(repo: Path) -> None:
    r = Repo(repo)
    r.git("switch", "--quiet", "-c", "other")
    r.git("switch", "--quiet", "main")
    assert not r.check_ref_format("@{-1}")  # git expands it to "other"


def test_commits_oldest_first(repo: Path) -> None:
    r = Repo(repo)
    base = r.rev_parse("HEAD")
    first = _commit(r, {"a.txt": "1\n"}, "PRP-1: Phase 1 - first")
    second = _commit(r, {"a.txt": "2\n"}, "PRP-1: Phase 2 - second: with colon")
    assert r.commits(base, "HEAD") == [
        Commit(sha=first, subject="PRP-1: Phase 1 - first"),
        Commit(sha=second, subject="PRP-1: Phase 2 - second: with colon"),
    ]
    assert r.commits("HEAD", "HEAD") == []


def test_changed_files_since_the_merge_base(repo: Path) -> None:
    r = Repo(repo)
    _commit(r, {"old name.txt": "x\n", "keep.txt": "k\n"}, "setup")
    r.git("switch", "--quiet", "-c", "feature")
    r.git("mv", "old name.txt", "new.txt")
    _commit(r, {"src/ü.py": "print()\n"}, "feature work")
    r.git("switch", "--quiet", "main")
    _commit(r, {"main-only.txt": "m\n"}, "main moves on")
    assert r.changed_files("main", "feature") == ["new.txt", "old name.txt", "src/ü.py"]


def test_is_ancestor_and_merge_base(repo: Path) -> None:
    r = Repo(repo)
    root = r.rev_parse("HEAD")
    tip = _branch(r, "feature", {"f.txt": "f\n"})
    assert r.is_ancestor(root, tip)
    assert not r.is_ancestor(tip, root)
    assert r.merge_base("main", "feature") == root
    with pytest.raises(GitError):
        r.is_ancestor("nope", tip)


def test_merge_base_of_unrelated_histories_raises(repo: Path) -> None:
    r = Repo(repo)
    r.git("switch", "--quiet", "--orphan", "island")
    _commit(r, {"island.txt": "i\n"}, "island")
    with pytest.raises(GitError, match="no common ancestor"):
        r.merge_base("main", "island")


def test_ref_tips_in_one_call(repo: Path) -> None:
    r = Repo(repo)
    one = _branch(r, "prp-43-1-1-a", {"a.txt": "a\n"})
    two = _branch(r, "prp-43-2-1-b", {"b.txt": "b\n"})
    _branch(r, "prp-44-1-1-c", {"c.txt": "c\n"})
    tips = r.ref_tips(["refs/heads/prp-43-*", "refs/heads/missing"])
    assert tips == {"refs/heads/prp-43-1-1-a": one, "refs/heads/prp-43-2-1-b": two}
    assert r.ref_tips([]) == {}


def test_ref_dates(repo: Path) -> None:
    r = Repo(repo)
    r.git("branch", "dated")
    stamp = float(r.git("log", "-1", "--format=%ct").stdout)
    assert r.ref_dates(["refs/heads/dated", "refs/heads/missing"]) == {"refs/heads/dated": stamp}
    assert r.ref_dates([]) == {}


def test_find_first_parent_commit(repo: Path) -> None:
    r = Repo(repo)
    side = _branch(r, "side", {"s.txt": "s\n"}, "Merge PRP-1: on a side line")
    r.git("merge", "--quiet", "--no-ff", "-m", "Merge PRP-2: title", "side")
    merge = r.rev_parse("HEAD")
    _commit(r, {"x.txt": "x\n"}, "later, mentions Merge PRP-1: in passing")
    assert r.find_first_parent_commit("main", "Merge PRP-2: ") == merge
    assert r.find_first_parent_commit("main", "Merge PRP-1: ") is None  # only on the side line
    assert r.find_first_parent_commit("side", "Merge PRP-1: ") == side


def test_read_blob_and_is_ignored(repo: Path) -> None:
    r = Repo(repo)
    _commit(r, {".gitignore": ".ce/tmp/\n", "crlf.txt": "a\r\nb\r\n"}, "files")
    assert r.read_blob("HEAD", "README.md") == "# test repo\n"
    assert r.read_blob("HEAD", "crlf.txt") == "a\r\nb\r\n"
    assert r.read_blob("HEAD", "missing.md") is None
    assert r.is_ignored(".ce/tmp/checkpoint.json")
    assert not r.is_ignored("src/x.py")


def test_worktrees_porcelain(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    head = r.rev_parse("HEAD")
    r.add_worktree(tmp_path / "wt-branch", "feature", head)
    r.add_detached_worktree(tmp_path / "wt-detached", head)
    r.git("worktree", "lock", str(tmp_path / "wt-detached"))
    r.add_worktree(tmp_path / "wt-gone", "gone", head)
    (tmp_path / "wt-gone").rename(tmp_path / "moved-away")
    by_path = {info.path: info for info in r.worktrees()}
    main = by_path[repo.resolve()]
    assert (main.branch, main.head, main.detached, main.locked) == (_MAIN, head, False, False)
    feature = by_path[(tmp_path / "wt-branch").resolve()]
    assert (feature.branch, feature.detached, feature.prunable) == (_FEATURE, False, False)
    detached = by_path[(tmp_path / "wt-detached").resolve()]
    assert (detached.branch, detached.detached, detached.locked) == (None, True, True)
    assert by_path[(tmp_path / "wt-gone").resolve()].prunable
    assert next(iter(by_path)) == repo.resolve()  # the main checkout first, as git lists it


# -- merging without a checkout ----------------------------------------------------------------


def test_merge_tree_clean_then_commit_tree_with_two_parents(repo: Path) -> None:
    r = Repo(repo)
    theirs = _branch(r, "feature", {"feature.txt": "f\n"})
    ours = _commit(r, {"main.txt": "m\n"}, "main work")
    before = _snapshot(r)
    merged = r.merge_tree(ours, theirs)
    assert merged.clean
    assert merged.conflicts == ()
    assert merged.tree is not None
    commit = r.commit_tree(merged.tree, [ours, theirs], "Merge PRP-1: feature\n\nbody\n")
    parents = r.git("rev-list", "--parents", "-n1", commit).stdout.split()
    assert parents == [commit, ours, theirs]
    assert r.rev_parse(f"{commit}^{{tree}}") == merged.tree
    assert r.git("log", "-1", "--format=%B", commit).stdout == "Merge PRP-1: feature\n\nbody\n\n"
    assert r.git("ls-tree", "--name-only", commit).stdout.split() == [
        "README.md",
        "feature.txt",
        "main.txt",
    ]
    # Nothing moved: no ref, no file of the checkout.
    assert _snapshot(r) == before


def test_merge_tree_conflict_lists_the_paths(repo: Path) -> None:
    r = Repo(repo)
    _commit(r, {"a.txt": "base\n", "b c.txt": "base\n", "ok.txt": "x\n"}, "base")
    theirs = _branch(r, "feature", {"a.txt": "theirs\n", "b c.txt": "theirs\n"})
    ours = _commit(r, {"a.txt": "ours\n", "b c.txt": "ours\n", "ok.txt": "y\n"}, "main")
    merged = r.merge_tree(ours, theirs)
    assert not merged.clean
    assert merged.tree is None
    assert merged.conflicts == ("a.txt", "b c.txt")


def test_merge_tree_of_an_unknown_commit_is_an_error_not_a_conflict(repo: Path) -> None:
    with pytest.raises(GitError):
        Repo(repo).merge_tree("HEAD", "no-such-branch")


def test_tree_with_file_touches_no_checkout(repo: Path) -> None:
    r = Repo(repo)
    (repo / "bin").mkdir()
    (repo / "bin" / "run.sh").write_text("#!/bin/sh\n")
    (repo / "bin" / "run.sh").chmod(0o755)
    head = _commit(r, {"PRPs/a/PRP-1.md": "status: ready\n"}, "files")
    tree = r.tree_with_file(head, "PRPs/a/PRP-1.md", "status: completed\r\n")
    tree = r.tree_with_file(r.commit_tree(tree, [head], "x"), "bin/run.sh", "#!/bin/sh\necho\n")
    new = r.commit_tree(tree, [head], "two files")
    assert r.read_blob(new, "PRPs/a/PRP-1.md") == "status: completed\r\n"
    assert r.git("ls-tree", new, "bin/run.sh").stdout.startswith("100755 ")
    assert r.read_blob(new, "README.md") == "# test repo\n"
    added = r.tree_with_file(head, "new/deep/file.txt", "hi\n")
    assert r.git("cat-file", "-p", f"{added}:new/deep/file.txt").stdout == "hi\n"
    assert r.dirty_tracked() == []
    assert (repo / "PRPs" / "a" / "PRP-1.md").read_text() == "status: ready\n"


def test_update_ref_compare_and_swap(repo: Path) -> None:
    r = Repo(repo)
    old = r.rev_parse("HEAD")
    r.git("branch", "target")
    new = _branch(r, "feature", {"f.txt": "f\n"})
    assert r.update_ref("refs/heads/target", new, old, message="ce: merge")
    assert r.rev_parse("refs/heads/target") == new
    # Someone else moved it: the swap from the stale value fails and changes nothing.
    assert not r.update_ref("refs/heads/target", old, old)
    assert r.rev_parse("refs/heads/target") == new
    # All zeros: create only if absent.
    assert r.update_ref("refs/heads/created", new, ZERO)
    assert not r.update_ref("refs/heads/created", old, ZERO)
    assert not r.update_ref("refs/heads/absent", new, old)


def test_update_ref_needs_a_full_ref_and_raises_on_other_errors(repo: Path) -> None:
    r = Repo(repo)
    head = r.rev_parse("HEAD")
    with pytest.raises(ValueError, match="full ref"):
        r.update_ref("main", head, head)
    with pytest.raises(GitError):
        r.update_ref("refs/heads/main", "f" * 40, head)  # no such object


def test_merge_ff_only_in_the_checkout(repo: Path) -> None:
    r = Repo(repo)
    tip = _branch(r, "feature", {"f.txt": "f\n"})
    (repo / "untracked-notes.txt").write_text("mine\n")
    r.merge_ff_only(tip)
    assert r.rev_parse("HEAD") == tip
    assert (repo / "f.txt").read_text() == "f\n"
    assert (repo / "untracked-notes.txt").read_text() == "mine\n"


def test_merge_ff_only_refuses_to_diverge_or_overwrite(repo: Path) -> None:
    r = Repo(repo)
    tip = _branch(r, "feature", {"f.txt": "f\n"})
    _commit(r, {"m.txt": "m\n"}, "diverge")
    with pytest.raises(GitError):
        r.merge_ff_only(tip)
    r.git("reset", "--quiet", "--hard", "HEAD~1")
    (repo / "f.txt").write_text("local untracked work\n")
    with pytest.raises(GitError):
        r.merge_ff_only(tip)
    assert (repo / "f.txt").read_text() == "local untracked work\n"


# -- writing -----------------------------------------------------------------------------------


def test_commit_all(repo: Path) -> None:
    r = Repo(repo)
    assert r.commit_all("nothing") is None
    (repo / "new.txt").write_text("new\n")
    (repo / "README.md").write_text("changed\n")
    sha = r.commit_all("PRP-1: Phase 1 - both")
    assert sha == r.rev_parse("HEAD")
    assert r.git("show", "--name-only", "--format=%s", sha).stdout.split("\n")[0] == (
        "PRP-1: Phase 1 - both"
    )
    assert r.dirty_tracked() == []
    assert r.git("status", "--porcelain").stdout == ""
    empty = r.commit_all("PRP-1: Phase 2 - nothing to do", allow_empty=True)
    assert empty is not None
    assert r.commits(sha, empty)[0].subject == "PRP-1: Phase 2 - nothing to do"


def test_commit_paths_commits_only_those_paths(repo: Path) -> None:
    r = Repo(repo)
    _commit(r, {"a.txt": "a\n", "b.txt": "b\n"}, "files")
    (repo / "a.txt").write_text("a2\n")
    (repo / "b.txt").write_text("b2\n")
    (repo / "new dir").mkdir()
    (repo / "new dir" / "n.txt").write_text("n\n")
    r.git("add", "b.txt")  # staged, but not among the paths: stays uncommitted
    sha = r.commit_paths(["a.txt", "new dir/n.txt"], "PRP-1: status completed")
    assert sha == r.rev_parse("HEAD")
    assert r.changed_files("HEAD~1", "HEAD") == ["a.txt", "new dir/n.txt"]
    assert r.dirty_tracked() == ["b.txt"]
    assert r.commit_paths(["a.txt"], "nothing new") is None
    assert r.commit_paths([], "nothing") is None


def test_commit_all_skips_the_users_hooks(repo: Path) -> None:
    r = Repo(repo)
    hooks = repo / "hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    r.git("config", "core.hooksPath", str(hooks))
    (repo / "x.txt").write_text("x\n")
    assert r.commit_all("saved anyway") is not None


def test_force_checkout_detached(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    first = r.rev_parse("HEAD")
    second = _commit(r, {".gitignore": "cache/\n", "a.txt": "a\n"}, "second")
    integration = tmp_path / "integration"
    r.add_detached_worktree(integration, first)
    wt = Repo(integration)
    (integration / "README.md").write_text("dirty\n")
    (integration / "leftover.txt").write_text("from an earlier validation\n")
    (integration / "cache").mkdir()
    (integration / "cache" / "kept").write_text("ignored, kept\n")
    wt.force_checkout_detached(second)
    assert wt.rev_parse("HEAD") == second
    assert wt.current_branch() is None
    assert (integration / "README.md").read_text() == "# test repo\n"
    assert not (integration / "leftover.txt").exists()
    assert (integration / "cache" / "kept").exists()


# -- worktrees and branches --------------------------------------------------------------------


def test_add_worktree_creates_an_untracked_branch_at_base(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    base = r.rev_parse("HEAD")
    _commit(r, {"later.txt": "l\n"}, "main moves on")
    path = tmp_path / "repo-prp-1"
    r.add_worktree(path, "prp-1-x", base)
    wt = Repo(path)
    assert wt.current_branch() == "prp-1-x"
    assert wt.rev_parse("HEAD") == base
    assert wt.common_dir() == r.common_dir()
    assert r.git("config", "--get", "branch.prp-1-x.merge", check=False).returncode == 1
    assert (r.common_dir() / LOCK_NAME).exists()
    assert r.current_branch() == "main"


def test_add_worktree_with_a_relative_path_is_taken_from_the_repo(repo: Path) -> None:
    r = Repo(repo)
    r.add_worktree(Path("../rel-wt"), "rel", "HEAD")
    assert (repo.parent / "rel-wt" / "README.md").exists()


def test_add_worktree_rejects_an_invalid_branch_name(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(CeError, match="not a valid git branch name"):
        Repo(repo).add_worktree(tmp_path / "wt", "bad name", "HEAD")
    assert not (tmp_path / "wt").exists()


def test_a_failed_add_deletes_the_branch_and_keeps_the_existing_dir(
    repo: Path, tmp_path: Path
) -> None:
    r = Repo(repo)
    path = tmp_path / "occupied"
    path.mkdir()
    (path / "precious.txt").write_text("not ours\n")
    with pytest.raises(GitError, match="already exists"):
        r.add_worktree(path, "prp-2-y", "HEAD")
    assert not r.branch_exists("prp-2-y")
    assert (path / "precious.txt").read_text() == "not ours\n"
    assert len(r.worktrees()) == 1


def test_a_failed_add_leaves_no_directory(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    path = tmp_path / "wt"
    with pytest.raises(GitError):
        r.add_worktree(path, "prp-3-z", "no-such-base")
    assert not path.exists()
    assert not r.branch_exists("prp-3-z")


def test_a_failed_add_keeps_a_branch_it_did_not_create(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    r.git("branch", "existing")
    with pytest.raises(GitError, match="already exists"):
        r.add_worktree(tmp_path / "wt", "existing", "HEAD")
    assert r.branch_exists("existing")
    assert not (tmp_path / "wt").exists()


def test_add_worktree_for_an_existing_branch(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    tip = _branch(r, "prp-4-w", {"w.txt": "w\n"})
    r.add_worktree_for_branch(tmp_path / "wt", "prp-4-w")
    assert Repo(tmp_path / "wt").rev_parse("HEAD") == tip
    assert Repo(tmp_path / "wt").current_branch() == "prp-4-w"
    with pytest.raises(GitError):
        r.add_worktree_for_branch(tmp_path / "wt2", "missing")
    assert not (tmp_path / "wt2").exists()


def test_remove_and_prune_worktrees(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    r.add_worktree(tmp_path / "clean", "clean", "HEAD")
    r.add_worktree(tmp_path / "dirty", "dirty", "HEAD")
    r.add_worktree(tmp_path / "vanished", "vanished", "HEAD")
    (tmp_path / "dirty" / "wip.txt").write_text("wip\n")
    r.remove_worktree(tmp_path / "clean")
    assert not (tmp_path / "clean").exists()
    with pytest.raises(GitError):
        r.remove_worktree(tmp_path / "dirty")
    assert (tmp_path / "dirty" / "wip.txt").exists()
    r.remove_worktree(tmp_path / "dirty", force=True)
    assert not (tmp_path / "dirty").exists()
    (tmp_path / "vanished").rename(tmp_path / "elsewhere")
    r.prune_worktrees()
    assert [info.path for info in r.worktrees()] == [repo.resolve()]
    assert r.branch_exists("clean")  # removing a worktree keeps its branch


def test_delete_branches_in_one_call(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    for name in ("prp-1-a", "prp-2-b", "prp-3-c"):
        _branch(r, name, {f"{name}.txt": "x\n"})  # unmerged: deleted anyway
    r.delete_branches(["prp-1-a", "prp-2-b", "never-existed"])
    assert r.ref_tips(["refs/heads/prp-"]) == {}
    assert r.ref_tips(["refs/heads/prp-*"]) == {"refs/heads/prp-3-c": r.rev_parse("prp-3-c")}
    r.delete_branches([])


def test_delete_branches_refuses_a_checked_out_branch(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    r.add_worktree(tmp_path / "wt", "busy", "HEAD")
    r.git("branch", "idle")
    with pytest.raises(GitError, match="busy"):
        r.delete_branches(["busy", "idle"])
    assert r.branch_exists("busy")
    assert not r.branch_exists("idle")


def test_sixteen_concurrent_worktree_adds_from_threads(repo: Path, tmp_path: Path) -> None:
    r = Repo(repo)
    base = r.rev_parse("HEAD")

    def add(n: int) -> None:
        Repo(repo).add_worktree(tmp_path / f"wt-{n}", f"prp-{n}-thread", base)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(add, range(16)))
    assert len(r.worktrees()) == 17
    assert len(r.ref_tips(["refs/heads/prp-*"])) == 16
    assert all((tmp_path / f"wt-{n}" / "README.md").exists() for n in range(16))


def test_sixteen_concurrent_worktree_adds_from_processes(repo: Path, tmp_path: Path) -> None:
    base = Repo(repo).rev_parse("HEAD")
    script = (
        "import sys; from pathlib import Path; from ce.git import Repo;"
        "Repo(Path(sys.argv[1])).add_worktree(Path(sys.argv[2]), sys.argv[3], sys.argv[4])"
    )
    children = [
        spawn_group(
            [sys.executable, "-c", script, str(repo), str(tmp_path / f"w{n}"), f"prp-{n}-p", base],
            cwd=tmp_path,
            env=dict(os.environ),
            log_path=tmp_path / f"add-{n}.log",
        )
        for n in range(16)
    ]
    codes = [child.wait(120) for child in children]
    for child in children:
        stop_group(child, grace=1)
    logs = {n: (tmp_path / f"add-{n}.log").read_text() for n in range(16) if codes[n] != 0}
    assert logs == {}
    assert len(Repo(repo).worktrees()) == 17


def test_git_is_found_on_each_path_once_and_named_git_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ce.git._run import run_git

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text('#!/bin/sh\necho fake git "$@"\nexit 5\n')
    (fake / "git").chmod(0o755)
    real = run_git(["--version"], cwd=None).stdout
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(GitError) as raised:
        run_git(["status"], cwd=None)
    assert raised.value.argv[0] == "git" and "fake git status" not in real
    assert run_git(["status"], cwd=None, check=False).stdout == "fake git status\n"
    monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])
    assert run_git(["--version"], cwd=None).stdout == real
