"""`ce init` in real repositories: what it writes, and that running it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ce.cli import run
from ce.config import load_config
from ce.init import template

SLASH = Path(".claude") / "commands"


def ce_init(repo: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.chdir(repo)
    return run(["init", *args])


def contents(repo: Path) -> dict[Path, bytes]:
    files = (p for p in sorted(repo.rglob("*")) if p.is_file())
    return {p: p.read_bytes() for p in files if ".git" not in p.relative_to(repo).parts}


def frontmatter(path: Path) -> dict[str, object]:
    _, head, _ = path.read_text().split("---\n", 2)
    data = YAML(typ="safe").load(head)
    assert isinstance(data, dict)
    return data


def test_init_writes_the_files(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "sub").mkdir()

    code = ce_init(repo / "sub", monkeypatch)

    assert code == 0
    assert capsys.readouterr().out == (
        "    created  .claude/commands/batch-exe-prp.md\n"
        "    created  .claude/commands/execute-prp.md\n"
        "    created  .ce/config.toml\n"
        "    created  .gitignore\n"
    )
    batch = repo / SLASH / "batch-exe-prp.md"
    # Not a project that depends on ce: the installed `ce`, and what to do when it is missing.
    assert "\nce batch-exe $ARGUMENTS\n" in batch.read_text()
    assert frontmatter(batch)["allowed-tools"] == "Bash(ce batch-exe:*), Bash(ce status:*), Read"
    execute = (repo / SLASH / "execute-prp.md").read_text()
    assert "\nce execute-prp $ARGUMENTS\n" in execute
    for text in (batch.read_text(), execute):
        assert "uv run ce" not in text.replace("Do not try `uv run ce`", "")
        assert "`ce: command not found`" in text
        assert "uv tool install" in text and "pipx install" in text
        assert "{{" not in text
    assert "description" in frontmatter(repo / SLASH / "execute-prp.md")
    assert (repo / ".gitignore").read_text() == ".ce/tmp/\n"
    config = load_config(repo)  # the starter configuration is valid as written
    assert config.executor == "claude"
    assert config.executor_tables.claude.nudge is True


def test_init_again_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ce_init(repo, monkeypatch)
    before = contents(repo)
    capsys.readouterr()

    assert ce_init(repo, monkeypatch) == 0

    assert capsys.readouterr().out.split() == [
        *("unchanged", ".claude/commands/batch-exe-prp.md"),
        *("unchanged", ".claude/commands/execute-prp.md"),
        *("unchanged", ".ce/config.toml"),
        *("unchanged", ".gitignore"),
    ]
    assert contents(repo) == before


def test_user_edits_are_kept_unless_forced(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = repo / ".ce" / "config.toml"
    config.parent.mkdir()
    config.write_text('[executor]\nname = "codex"\n')
    (repo / ".gitignore").write_text("node_modules/\n/.ce/tmp")

    ce_init(repo, monkeypatch)

    out = capsys.readouterr().out
    assert "       kept  .ce/config.toml\n" in out
    assert "  unchanged  .gitignore\n" in out
    assert "run `ce init --force`" in out
    assert config.read_text() == '[executor]\nname = "codex"\n'
    assert (repo / ".gitignore").read_text() == "node_modules/\n/.ce/tmp"

    ce_init(repo, monkeypatch, "--force")

    assert "overwritten  .ce/config.toml\n" in capsys.readouterr().out
    assert config.read_text() == template("config.toml")


def test_gitignore_is_appended_to(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / ".gitignore").write_text("dist/\n*.pyc")

    ce_init(repo, monkeypatch)

    assert (repo / ".gitignore").read_text() == "dist/\n*.pyc\n.ce/tmp/\n"


def test_init_outside_a_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))

    assert ce_init(tmp_path, monkeypatch) == 2

    assert "is not inside a git repository" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "pyproject",
    [
        '[project]\nname = "app"\ndependencies = ["click", "ce>=0.1"]\n',
        '[project]\nname = "app"\n[dependency-groups]\ndev = ["ce @ git+https://h/ce"]\n',
        '[project]\nname = "ce"\n',
    ],
    ids=["dependency", "dev-group", "ce-itself"],
)
def test_a_project_depending_on_ce_calls_it_through_uv(
    repo: Path, monkeypatch: pytest.MonkeyPatch, pyproject: str
) -> None:
    (repo / "pyproject.toml").write_text(pyproject)

    ce_init(repo, monkeypatch)

    batch = repo / SLASH / "batch-exe-prp.md"
    assert "\nuv run ce batch-exe $ARGUMENTS\n" in batch.read_text()
    assert frontmatter(batch)["allowed-tools"] == (
        "Bash(uv run ce batch-exe:*), Bash(uv run ce status:*), Read"
    )
    assert "`uv sync`" in batch.read_text()
    assert "\nuv run ce execute-prp $ARGUMENTS\n" in (repo / SLASH / "execute-prp.md").read_text()


def test_a_project_with_other_dependencies_calls_the_installed_ce(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "app"\ndependencies = ["cement", "ce-tools"]\n'
    )

    ce_init(repo, monkeypatch)

    assert "\nce batch-exe $ARGUMENTS\n" in (repo / SLASH / "batch-exe-prp.md").read_text()
