"""`ce` installed as a tool (`uv tool install <this checkout>`) works in any repository: the
dry run of another project's batch, `ce init` and `ce demo`, with nothing left in that project
(`uv run ce` there fails, "Failed to spawn: ce", and leaves a `.venv` and `uv.lock`)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchkit import Spec, git, make_batch_repo, write

CHECKOUT = Path(__file__).parent.parent
# What uv prints when it cannot reach the package index: then the test cannot run here.
OFFLINE = ("failed to fetch", "error sending request", "dns error", "connect", "network")


@dataclass(frozen=True, kw_only=True)
class Tool:
    env: dict[str, str]

    def run(self, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot install ce as a tool")
    return uv


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """ce installed from this checkout into a throwaway tool directory and HOME; uv's own
    cache is kept, so a reinstall takes seconds."""
    uv = _uv()
    base = tmp_path_factory.mktemp("tool")
    home = base / "home"
    home.mkdir()
    cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True)
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "UV_", "VIRTUAL_ENV", "PYTHON"))
    }
    env = {
        **inherited,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_BIN_HOME": str(home / "bin"),
        "UV_CACHE_DIR": cache.stdout.strip(),
        "UV_TOOL_DIR": str(base / "tools"),
        "UV_TOOL_BIN_DIR": str(base / "bin"),
        # The tool must be found on PATH, not the .venv the tests run in.
        "PATH": os.pathsep.join([str(base / "bin"), str(Path(uv).parent), "/usr/bin", "/bin"]),
    }
    python = getattr(sys, "_base_executable", sys.executable)
    installed = subprocess.run(
        [uv, "tool", "install", "--python", python, str(CHECKOUT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if installed.returncode != 0:
        said = installed.stdout + installed.stderr
        if any(word in said.lower() for word in OFFLINE):
            pytest.skip(f"uv tool install cannot reach the package index here:\n{said[-2000:]}")
        pytest.fail(f"uv tool install {CHECKOUT} failed:\n{said}")
    assert (base / "bin" / "ce").exists(), installed.stderr
    return Tool(env=env)


def other_project(root: Path) -> Path:
    """A Python project of the user's own, which does not depend on ce, with batch 7."""
    spec = Spec(id="PRP-7.1.1", title="Greeting", phases=[[write("app/hello.py", "hi")]])
    repo = make_batch_repo(root, [spec])
    (repo / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1.0"\n')
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "a project of its own")
    return repo


def assert_nothing_left(repo: Path) -> None:
    assert not (repo / ".venv").exists()
    assert not (repo / "uv.lock").exists()
    assert git(repo, "status", "--porcelain", "--ignored") == ""


def test_the_installed_ce_plans_another_repositorys_batch(tool: Tool, tmp_path: Path) -> None:
    repo = other_project(tmp_path / "app")
    head = git(repo, "rev-parse", "HEAD")

    done = tool.run(repo, "ce", "batch-exe", "--batch", "7", "--dry-run")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "PRP-7.1.1" in done.stdout
    assert_nothing_left(repo)
    assert git(repo, "rev-parse", "HEAD") == head


def test_the_installed_ce_writes_slash_commands_calling_it(tool: Tool, tmp_path: Path) -> None:
    repo = other_project(tmp_path / "app")

    done = tool.run(repo, "ce", "init")

    assert done.returncode == 0, done.stdout + done.stderr
    batch = (repo / ".claude" / "commands" / "batch-exe-prp.md").read_text()
    assert "\nce batch-exe $ARGUMENTS\n" in batch
    assert not (repo / ".venv").exists() and not (repo / "uv.lock").exists()


def test_the_installed_ce_runs_the_demo_and_its_next_steps_work(tool: Tool, tmp_path: Path) -> None:
    done = tool.run(tmp_path, "ce", "demo", "--dir", str(tmp_path / "demos"), "--quiet")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Total PRPs: 5  Completed: 5" in done.stdout
    step = next(line for line in done.stderr.splitlines() if "# the plan it followed" in line)
    command = shlex.split(step.split("#")[0])
    assert command[:2] == ["ce", "batch-exe"]
    root = next(Path(line.split()[1]) for line in done.stderr.splitlines() if "&& git log" in line)
    again = tool.run(root, *command)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (root / ".venv").exists()


def test_pipx_installs_it_as_well(tool: Tool, tmp_path: Path) -> None:
    """The README's `pipx install /path/to/ce`, with pipx fetched by uv for the test only (it
    is no dependency of ce): skipped where pipx cannot be fetched."""
    uv = _uv()
    bin_dir = tmp_path / "pipx-bin"
    env = {
        **tool.env,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "pipx-man"),
        "PATH": os.pathsep.join([str(bin_dir), str(Path(uv).parent), "/usr/bin", "/bin"]),
    }
    pipx = Tool(env=env)
    python = getattr(sys, "_base_executable", sys.executable)
    installed = pipx.run(
        tmp_path, uv, "tool", "run", "pipx", "install", "--python", python, str(CHECKOUT),
        timeout=300,
    )  # fmt: skip
    if installed.returncode != 0:
        said = installed.stdout + installed.stderr
        if any(word in said.lower() for word in OFFLINE):
            pytest.skip(f"pipx cannot be fetched or cannot reach the package index:\n{said}")
        pytest.fail(f"pipx install {CHECKOUT} failed:\n{said}")
    repo = other_project(tmp_path / "app")

    done = pipx.run(repo, str(bin_dir / "ce"), "batch-exe", "--batch", "7", "--dry-run")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "PRP-7.1.1" in done.stdout
    assert_nothing_left(repo)
