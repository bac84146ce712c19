"""Worktree environments: `.worktreeinclude`, the `setup` command, CE_PORT_BASE; name clashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchkit import CONFIG, Spec, git, make_batch_repo, write
from ce.cli import run
from ce.git import Repo
from ce.prp.model import Prp, StatusClass
from ce.run.tracked import untracked_prps
from ce.run.worktree_env import cone_dirs, relpaths


def ce_json(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, object], str]:
    monkeypatch.chdir(repo)
    code = run(["batch-exe", "--batch", "7", "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else {}), out.err


def show(repo: Path, path: str) -> str:
    return git(repo, "show", f"main:{path}")


TWO = [
    Spec(
        id="PRP-7.1",
        title="Uses the env",
        phases=[
            [
                "cat .env > seen-env.txt; cat local/settings.json >> seen-env.txt",
                'printf "%s\\n" "$CE_PORT_BASE" > port-1.txt',
            ]
        ],
        files=["seen-env.txt", "port-1.txt"],
    ),
    Spec(
        id="PRP-7.2",
        title="Other port",
        phases=[['printf "%s\\n" "$CE_PORT_BASE" > port-2.txt', "test ! -e notes.txt"]],
        files=["port-2.txt"],
    ),
]


def test_included_files_are_copied_and_each_prp_has_its_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "port_base = 30000\nports_per_prp = 10\n" + CONFIG
    config += '[validate]\nlevel3 = "bash -c \'test -n \\"$CE_PORT_BASE\\"\'"\n'
    repo = make_batch_repo(tmp_path / "repo", TWO, config=config)
    (repo / ".gitignore").write_text(".env\nlocal/\n", encoding="utf-8")
    (repo / ".worktreeinclude").write_text(".env\nlocal/\nnotes.txt\n", encoding="utf-8")
    git(repo, "add", ".gitignore", ".worktreeinclude")
    git(repo, "commit", "-q", "-m", "ignore local files")
    (repo / ".env").write_text("API_URL=http://localhost\n", encoding="utf-8")
    (repo / "local").mkdir()
    (repo / "local" / "settings.json").write_text('{"debug": true}\n', encoding="utf-8")
    (repo / "notes.txt").write_text("untracked, not ignored: never copied\n", encoding="utf-8")

    code, summary, err = ce_json(repo, monkeypatch, capsys)

    assert code == 0, err
    assert summary["status"] == "COMPLETED"
    assert show(repo, "seen-env.txt") == 'API_URL=http://localhost\n{"debug": true}'
    # Plan order PRP-7.1, PRP-7.2: blocks of 10 ports from 30000.
    assert (show(repo, "port-1.txt"), show(repo, "port-2.txt")) == ("30000", "30010")
    tracked = git(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    assert ".env" not in tracked
    assert "local/settings.json" not in tracked
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-7.1.log").read_text(encoding="utf-8")
    assert "[ce] .worktreeinclude: copied .env, local/settings.json" in log
    assert "not copied (git does not ignore them, so they would be committed): notes.txt" in log


def test_setup_runs_in_each_new_worktree_before_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = "bash -c 'echo setting up in $PWD; echo $CE_PORT_BASE > .setup-done'"
    config = f'setup = "{setup}"\n' + CONFIG
    specs = [
        Spec(
            id=f"PRP-7.{n}",
            title=f"Needs setup {n}",
            phases=[[f"cp .setup-done setup-{n}.txt"]],
            files=[f"setup-{n}.txt"],
        )
        for n in (1, 2)
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)
    (repo / ".gitignore").write_text(".setup-done\n", encoding="utf-8")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")

    code, _summary, err = ce_json(repo, monkeypatch, capsys)

    assert code == 0, err
    assert (show(repo, "setup-1.txt"), show(repo, "setup-2.txt")) == ("20000", "20100")
    log = (repo / ".ce" / "tmp" / "logs" / "PRP-7.2.log").read_text(encoding="utf-8")
    assert log.index("[ce] setup: bash -c") < log.index("setting up in") < log.index("attempt 1")
    assert "repo-prp-7.2" in log


def test_a_failing_setup_fails_the_prp_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = "bash -c 'echo cannot resolve dependencies; exit 3'"
    config = f'setup = "{setup}"\n' + CONFIG
    specs = [
        Spec(id="PRP-7.1", title="Never runs", phases=[[write("a.txt", "a")]], files=["a.txt"])
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    code, summary, _err = ce_json(repo, monkeypatch, capsys)

    assert code == 1
    prp = summary["prps"]["PRP-7.1"]  # type: ignore[index]
    log = repo / ".ce" / "tmp" / "logs" / "PRP-7.1.log"
    assert prp["state"] == "failed"
    assert prp["error"] == f"setup command `{setup}` failed with exit code 3 (see {log})"
    text = log.read_text(encoding="utf-8")
    assert "cannot resolve dependencies" in text
    assert "attempt 1" not in text  # the executor never started
    assert git(repo, "ls-tree", "--name-only", "main", "a.txt") == ""


def test_a_setup_that_cannot_start_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = 'setup = "no-such-setup-tool --sync"\n' + CONFIG
    specs = [
        Spec(id="PRP-7.1", title="Never runs", phases=[[write("a.txt", "a")]], files=["a.txt"])
    ]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    code, summary, _ = ce_json(repo, monkeypatch, capsys)

    assert code == 1
    error = summary["prps"]["PRP-7.1"]["error"]  # type: ignore[index]
    assert error.startswith("setup command `no-such-setup-tool --sync` could not start: ")


def test_a_setup_line_that_cannot_be_split_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = 'setup = "bash -c \'unclosed"\n' + CONFIG
    specs = [Spec(id="PRP-7.1", title="A", phases=[[write("a.txt", "a")]], files=["a.txt"])]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config)

    code, _, err = ce_json(repo, monkeypatch, capsys)

    assert code == 2
    assert "config.toml: invalid configuration:\n  setup: " in err


def test_prps_whose_names_would_collide_are_refused_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        Spec(id="PRP-7.A", title="Same", phases=[[write("a.txt", "a")]], files=["a.txt"]),
        Spec(id="PRP-7.a", title="Same", phases=[[write("b.txt", "b")]], files=["b.txt"]),
    ]
    repo = make_batch_repo(tmp_path / "repo", specs)
    before = git(repo, "for-each-ref")

    code, _, err = ce_json(repo, monkeypatch, capsys)

    assert code == 2
    assert "(PRP-7.A) and " in err
    assert "(PRP-7.a) would share the branch prp-7-a-same" in err
    assert git(repo, "for-each-ref") == before
    assert not (repo / ".ce" / "tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


@pytest.mark.parametrize(
    ("paths", "directories", "expected"),
    [
        (["src/app/config.py", "README.md"], set(), ["src/app"]),
        (["docs/", "tests"], {"tests"}, ["docs", "tests"]),
        (["src/**/*.py", "*.md", "pkg/mod_[ab]/x.py"], set(), ["pkg", "src"]),
        (["a/b/c.py", "a/b/d.py", "a/e.py"], set(), ["a", "a/b"]),
        ([], set(), []),
    ],
)
def test_cone_dirs(paths: list[str], directories: set[str], expected: list[str]) -> None:
    assert cone_dirs(paths, directories) == expected


def test_relpaths_are_pathlib_relative_paths(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()  # as ce's repository root is
    root = tmp_path / "repo"
    (root / "PRPs").mkdir(parents=True)
    outside = tmp_path / "other" / "PRP-1.3.md"
    outside.parent.mkdir()
    linked_target = root / "PRPs" / "target.md"
    paths = [
        root / "PRPs" / "PRP-1.1.md",
        root / "PRPs" / ".." / "PRPs" / "PRP-1.2.md",  # its directory resolved once
        outside,
        root / "PRPs" / "PRP-1.4-link.md",  # a link, resolved whole: to where it points
        tmp_path / "repo-sibling" / "PRP-1.5.md",  # a name that starts like the root's
    ]
    for path in (*paths[:3], linked_target, paths[4]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    paths[3].symlink_to(linked_target)
    prps = [Prp(id=f"PRP-1.{n}", path=p, title="t", status="planning",
                status_class=StatusClass.READY) for n, p in enumerate(paths, 1)]  # fmt: skip

    def by_pathlib(path: Path) -> str | None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            return None

    expected = ["PRPs/PRP-1.1.md", "PRPs/PRP-1.2.md", None, "PRPs/target.md", None]
    assert [by_pathlib(p) for p in paths] == expected
    assert relpaths(root, prps) == expected


def test_untracked_prps_are_found_per_directory(tmp_path: Path) -> None:
    root = tmp_path.resolve() / "repo"
    (root / "PRPs" / "sub").mkdir(parents=True)
    (root / "new").mkdir()
    names = ["PRPs/PRP-1.1.md", "PRPs/PRP-1.2.md", "PRPs/sub/PRP-1.3.md", "PRP-1.4.md",
             "PRP-1.5.md", "new/PRP-1.6.md", "PRPs/sub/PRP-1.7.md"]  # fmt: skip
    for name in names:
        (root / name).write_text("x", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "PRPs/PRP-1.1.md", "PRPs/sub/PRP-1.3.md", "PRP-1.4.md")
    git(root, "commit", "-q", "-m", "some PRPs")
    prps = [Prp(id=f"PRP-1.{n}", path=root / name, title="t", status="planning",
                status_class=StatusClass.READY) for n, name in enumerate(names, 1)]  # fmt: skip
    assert untracked_prps(Repo(root), root, prps) == [
        "PRP-1.5.md",
        "PRPs/PRP-1.2.md",
        "PRPs/sub/PRP-1.7.md",
        "new/PRP-1.6.md",
    ]
