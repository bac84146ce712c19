"""`--backend`, `--ray-address` and `[backend]`: validated at the boundary, and `ce` without Ray
says how to install it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from batchkit import Spec, make_batch_repo, write
from ce.config import BackendConfig, load_config
from ce.core.errors import CeError


def _repo(tmp_path: Path, extra: str = "") -> Path:
    spec = Spec(id="PRP-7.1.1", title="One", phases=[[write("a.txt", "x")]], files=["a.txt"])
    config = f'executor = "script"\n{extra}'
    return make_batch_repo(tmp_path / "repo", [spec], config=config)


def test_the_local_backend_is_the_default() -> None:
    assert BackendConfig().name == "local"
    assert BackendConfig().slot_resource == "ce_slot"


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('name = "k8s"', "backend.name"),
        ('address = "not an address"', "backend.address"),
        ('slot_resource = "ce slot"', "backend.slot_resource"),
        ('runtime_env = {envvars = {A = "1"}}', "backend.runtime_env"),
        ("runtime_env = {env_vars = {A = 1}}", "backend.runtime_env"),
        ("relaunches = -1", "backend.relaunches"),
    ],
)
def test_a_wrong_backend_setting_names_its_field(tmp_path: Path, table: str, field: str) -> None:
    repo = _repo(tmp_path, f"[backend]\n{table}\n")
    with pytest.raises(CeError) as caught:
        load_config(repo)
    assert f"  {field}:" in str(caught.value), caught.value


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    repo = _repo(tmp_path, '[backend]\nname = "local"\naddress = "10.0.0.1:6379"\n')
    config = load_config(repo, {"backend": {"name": "ray", "address": "127.0.0.1:6380"}})
    assert (config.backend.name, config.backend.address) == ("ray", "127.0.0.1:6380")
    assert load_config(repo).backend.address == "10.0.0.1:6379"


_WITHOUT_RAY = """\
import sys
sys.modules["ray"] = None  # as if Ray were not installed
from ce.cli import run
sys.exit(run(sys.argv[1:]))
"""


def _ce(repo: Path, *args: str, without_ray: bool = False) -> subprocess.CompletedProcess[str]:
    how = ["-c", _WITHOUT_RAY] if without_ray else ["-m", "ce"]
    return subprocess.run(
        [sys.executable, *how, "batch-exe", "--batch", "7", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_ray_the_ray_backend_says_how_to_install_it(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    done = _ce(repo, "--backend", "ray", without_ray=True)
    assert done.returncode == 2, done.stderr
    assert "pip install 'ce[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    done = _ce(repo, without_ray=True)  # the local backend does not need it
    assert done.returncode == 0, done.stderr


def test_an_address_where_nothing_answers_is_said_at_once(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    done = _ce(repo, "--backend", "ray", "--ray-address", address)
    assert done.returncode == 2, done.stderr
    assert f"[backend] address {address}: nothing answers there" in done.stderr
