"""Hostile input: titles, ids, file lists and bodies never reach a shell or a git ref unquoted.

Everything runs through the real CLI and engine (script executor, real git). A marker file
named PWNED* anywhere means something from a PRP was executed where it should not have been.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from batchkit import CONFIG, git
from ce.cli import run

SRC = Path(__file__).resolve().parent.parent / "src"
PROCESS_HELPER = SRC / "ce" / "proc"
_SHELL_CALLS = {
    ("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "execv"),
    ("os", "execvp"), ("os", "execve"), ("os", "spawnl"), ("os", "spawnv"), ("os", "posix_spawn"),
    ("os", "posix_spawnp"), ("pty", "spawn"), ("asyncio", "create_subprocess_shell"),
    ("asyncio", "create_subprocess_exec"),
}  # fmt: skip


def _python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.keyword) and node.arg == "shell":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                found.append(f"{where}: shell=...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in _SHELL_CALLS:
                found.append(f"{where}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "pty", "asyncio"):
            names = {(node.module, alias.name) for alias in node.names}
            found += [f"{where}: from {m} import {n}" for m, n in sorted(names & _SHELL_CALLS)]
        if PROCESS_HELPER not in path.parents and _imports_subprocess(node):
            found.append(f"{where}: subprocess imported outside ce/proc/")
    return found


def _imports_subprocess(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "subprocess" for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "subprocess"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        dynamic = node.func.id in ("__import__", "import_module")
        return dynamic and any(
            isinstance(arg, ast.Constant) and arg.value == "subprocess" for arg in node.args
        )
    return False


def test_no_shell_anywhere_in_src() -> None:
    files = _python_files()
    assert PROCESS_HELPER / "__init__.py" in files
    assert [v for path in files for v in _violations(path)] == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os, subprocess\nfrom os import system\nsubprocess.run('x', shell=True)\n"
        "os.system('x')\nos.popen('x')\n__import__('subprocess')\n",
        encoding="utf-8",
    )
    found = [v.split(": ", 1)[1] for v in _violations_at(bad)]
    assert found == [
        "subprocess imported outside ce/proc/",
        "from os import system",
        "shell=...",
        "os.system",
        "os.popen",
        "subprocess imported outside ce/proc/",
    ]


def _violations_at(path: Path) -> list[str]:
    global SRC  # noqa: PLW0603 - the scan names files relative to SRC
    saved, SRC = SRC, path.parent
    try:
        return sorted(_violations(path), key=lambda v: int(v.split(":")[1]))
    finally:
        SRC = saved


# -- real batches -----------------------------------------------------------------------------


def prp_text(
    prp_id: str, title: str, files: Sequence[str], phases: Sequence[tuple[str, str]]
) -> str:
    """A PRP whose frontmatter values are JSON (valid YAML, quoted whatever they contain)."""
    lines = [
        "---",
        f"prp_id: {json.dumps(prp_id)}",
        f"title: {json.dumps(title)}",
        "status: planning",
        "batch_id: 7",
        "dependencies: []",
        f"files_modified: {json.dumps(list(files))}",
        "---",
        "",
        f"# {title}",
        "",
        "## Implementation",
        "",
    ]
    for number, (phase_title, block) in enumerate(phases, start=1):
        lines += [f"### Phase {number}: {phase_title}", "", "```bash run", block, "```", ""]
    return "\n".join(lines)


def make_repo(root: Path, prps: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    prp_dir = root / "PRPs" / "feature-requests"
    prp_dir.mkdir(parents=True)
    for name, text in prps.items():
        (prp_dir / name).write_text(text, encoding="utf-8")
    (root / ".ce").mkdir()
    (root / ".ce" / "config.toml").write_text(CONFIG, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def pwned(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.name.startswith("PWNED")]


def ce(repo: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.chdir(repo)
    return run(list(argv))


HOSTILE_TITLES = {
    "PRP-7.1": "$(touch PWNED1) `touch PWNED2`; touch PWNED3 && echo x | tee PWNED4 > PWNED5",
    "PRP-7.2": "Refs @{-1} HEAD~1 x^2 a:b .lock .. [x] *? \\ ~ -rf --upload-pack=touch PWNED6",
    "PRP-7.3": "Ünïcödé 日本語 😀 \u202eevil\u202c \t tabs",
    "PRP-7.4": "long " * 80,
    "PRP-7.5": "nul\x00 esc\x1b[2J\x1b]0;title\x07 del\x7f c1\x9b",
    "PRP-7.x_Y-z": "Odd but safe id",
    "PRP-7.9" + "9" * 92: "Longest id",
}
HOSTILE_FILES = ["dollar$(touch PWNED7).txt", "semi;colon&amp|pipe.txt", "-rf.txt", "ü/ñ.txt"]
DECLARED = [f"`{name}`" for name in HOSTILE_FILES]  # in backticks: "(...)" is not a note


def test_hostile_titles_files_and_phase_titles_run_and_merge_and_nothing_executes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prps = {}
    for n, (prp_id, title) in enumerate(HOSTILE_TITLES.items()):
        files = [f"out-{n}.txt"] + (HOSTILE_FILES if n == 0 else [])
        block = "\n".join(f"mkdir -p \"$(dirname -- '{f}')\"; printf x > './{f}'" for f in files)
        phases = [("$(touch PWNED8) `touch PWNED9`", block), ("HEAD@{1}; \x1b[2J\x00", "true")]
        declared = [f"out-{n}.txt"] + (DECLARED if n == 0 else [])
        prps[f"{prp_id}-x.md"] = prp_text(prp_id, title, declared, phases)
    repo = make_repo(tmp_path / "repo", prps)

    code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--json")

    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["totals"]["completed"] == len(HOSTILE_TITLES)
    assert pwned(tmp_path, Path.cwd()) == []
    tree = git(repo, "ls-tree", "-r", "--name-only", "-z", "main").split("\0")
    assert set(HOSTILE_FILES) <= set(tree)
    for prp_id, prp in summary["prps"].items():
        branch = prp["branch"]
        assert branch.isascii() and branch.startswith("prp-7-"), branch
        assert git(repo, "check-ref-format", "--branch", branch) == branch
        assert Path(prp["worktree"]).parent == tmp_path
        log = repo / ".ce" / "tmp" / "logs" / f"{prp_id}.log"
        assert log.is_file() and log.resolve().parent == (repo / ".ce" / "tmp" / "logs")
    subjects = git(repo, "log", "--format=%s", "main")
    assert f"Merge PRP-7.1: {HOSTILE_TITLES['PRP-7.1']}" in subjects
    assert "PRP-7.1: Phase 1 - $(touch PWNED8) `touch PWNED9`" in subjects
    assert "Merge PRP-7.5: nul esc [2J ]0;title del c1" in subjects  # one line, no escapes
    assert "PRP-7.5: Phase 2 - HEAD@{1}; [2J" in subjects
    assert "\x1b" not in out.err


UNSAFE_IDS = [
    "PRP-$(touch PWNED)", "PRP-`touch PWNED`", "PRP-a;touch PWNED", "PRP-a..b", "PRP-@{-1}",
    "PRP-x~1", "PRP-x^y", "PRP-a:b", "PRP-ü", "PRP-../../x", "PRP-a/b", "PRP--rf", "PRP-a b",
    "PRP-.hidden", "PRP-" + "1" * 200, "PRP-a\\b", "PRP-x.lock/y", "PRP-a*", "PRP-[a]",
]  # fmt: skip


def test_unsafe_ids_are_refused_and_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path / "repo", {})
    prp_file = repo / "PRPs" / "feature-requests" / "PRP-7.1-x.md"
    refs = git(repo, "for-each-ref")
    for prp_id in UNSAFE_IDS:
        prp_file.write_text(
            prp_text(prp_id, "T", ["a.txt"], [("P", "printf x > a.txt")]), encoding="utf-8"
        )

        code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--json")

        err = capsys.readouterr().err
        assert code == 2, (prp_id, err)
        assert "is not a safe PRP id" in err, err
        assert "Traceback" not in err
    assert git(repo, "for-each-ref") == refs
    assert not (repo / ".ce" / "tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert pwned(tmp_path) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["batch-exe", "PRP-$(touch PWNED)"],
        ["batch-exe", "PRP-a..b", "--dry-run"],
        ["execute-prp", "PRP-@{-1}"],
        ["batch-exe", "../../etc/passwd"],
        ["batch-exe", "--batch", "7;touch PWNED"],
        ["batch-exe", "--batch", "../7"],
        ["batch-exe", "--batch", "$(touch PWNED)", "--dry-run", "--json"],
    ],
)
def test_unsafe_ids_on_the_command_line_are_user_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    repo = make_repo(tmp_path / "repo", {})

    code = ce(repo, monkeypatch, *argv)

    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ")
    assert pwned(tmp_path) == []


def test_yaml_never_builds_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    payloads = [
        '!!python/object/apply:os.system ["touch PWNED"]',
        '!!python/object/new:subprocess.Popen [["touch", "PWNED"]]',
        "!!python/name:os.system",
        '!custom {x: "touch PWNED"}',
    ]
    repo = make_repo(tmp_path / "repo", {})
    prp_file = repo / "PRPs" / "feature-requests" / "PRP-7.1-x.md"
    for payload in payloads:
        prp_file.write_text(
            f"---\nprp_id: PRP-7.1\ntitle: {payload}\nstatus: planning\n---\n# T\n",
            encoding="utf-8",
        )

        code = ce(repo, monkeypatch, "batch-exe", "--batch", "7", "--dry-run", "--json")

        err = capsys.readouterr().err
        assert code == 2, err
        assert "ce reads plain YAML data only: remove the `!` tag" in err
    assert pwned(tmp_path, Path.cwd()) == []
