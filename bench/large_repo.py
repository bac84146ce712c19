"""Large repositories: worktrees of a generated 50,000-file repository, full and sparse.

Measured through `ce.git.Repo` (the code the engine runs): `worktree add` of a new PRP branch,
its disk use (`disk_bytes` in the summary: files plus the worktree's admin dir with its index),
and `worktree remove`; each the median of REPEAT rounds. Then a batch of PRPS one-file PRPs
through `ce batch-exe` both ways (setup, agents, merges and cleanup; no validation commands).
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench import Row, run_ce
from ce.git import Repo
from ce.run.worktree_env import disk_usage

FILES = 50_000
PER_DIR = 500
REPEAT = 2
PRPS = 3
MIN_SPEEDUP = 2.0  # a sparse worktree must be added at least this much faster
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")
# No stage review: it checks out the whole tree in the integration worktree, which would hide
# what the PRPs' worktrees cost (the merges check nothing here, so they need no checkout).
CONFIG = """\
executor = "script"
max_parallel = {parallel}
sparse = {sparse}
auto_review = false
[validate]
level2 = ""
level3 = ""
[monitor]
poll_seconds = 0.5
"""


def _git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, input=data, check=True, capture_output=True
    )
    return done.stdout.decode().strip()


def _prp(n: int) -> str:
    return f"""---
prp_id: PRP-9.{n}
title: Module {n}
status: planning
batch_id: 9
files_modified: [pkg{n}/new_{n}.py]
---
# Module {n}

## Implementation

### Phase 1: Write

```bash run
printf 'VALUE = {n}\\n' > pkg{n}/new_{n}.py
```
"""


def _files() -> Iterator[tuple[str, bytes]]:
    yield ".gitignore", b".ce/\n"
    yield "pyproject.toml", b'[project]\nname = "large"\n'
    for n in range(1, PRPS + 1):
        yield f"PRPs/feature-requests/PRP-9.{n}-module.md", _prp(n).encode()
    for i in range(FILES):
        yield f"pkg{i // PER_DIR}/mod_{i}.py", f'"""Module {i}."""\n\nVALUE = {i}\n'.encode()


def _fast_import_stream() -> bytes:
    """One commit with every file, written by `git fast-import` (seconds, not minutes)."""
    chunks, entries = [], []
    for mark, (path, content) in enumerate(_files(), start=1):
        chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(content), content))
        entries.append(b"M 100644 :%d %s\n" % (mark, path.encode()))
    message = b"generated"
    header = b"commit refs/heads/main\ncommitter bench <bench@example.invalid> 1700000000 +0000\n"
    chunks += [header, b"data %d\n%s\n" % (len(message), message), *entries, b"\n"]
    return b"".join(chunks)


def make_large_repo(parent: Path) -> Path:
    root = parent / "large"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "bench")
    _git(root, "config", "user.email", "bench@example.invalid")
    _git(root, "fast-import", "--quiet", data=_fast_import_stream())
    _git(root, "reset", "--hard", "-q", "main")  # the user's checkout: ce needs it clean
    return root


def _median(values: list[float]) -> float:
    return statistics.median(values)


def measure_worktrees(root: Path, sparse: list[str] | None) -> tuple[float, float, int]:
    """Median seconds to add and to remove a worktree, and its disk use."""
    repo = Repo(root)
    base = repo.rev_parse("refs/heads/main")
    adds, removes, disk = [], [], 0
    for n in range(REPEAT):
        path, branch = root.parent / f"wt-{n}", f"bench-{n}"
        start = time.perf_counter()
        repo.add_worktree(path, branch, base, sparse=sparse)
        adds.append(time.perf_counter() - start)
        disk = disk_usage(path)
        start = time.perf_counter()
        repo.remove_worktree(path, force=True)
        removes.append(time.perf_counter() - start)
        repo.delete_branches([branch])
    return _median(adds), _median(removes), disk


def time_batch(root: Path, sparse: bool) -> tuple[float, float]:
    """Seconds for `ce batch-exe` of the PRPs, and their mean disk use per worktree."""
    initial = _git(root, "rev-parse", "HEAD")
    (root / ".ce").mkdir(exist_ok=True)
    config = CONFIG.format(parallel=PRPS, sparse=str(sparse).lower())
    (root / ".ce" / "config.toml").write_text(config, encoding="utf-8")
    elapsed, summary = run_ce(root, "--batch", "9")
    prps = summary["prps"].values()
    disk = statistics.mean(prp["disk_bytes"] for prp in prps)
    _git(root, "reset", "--hard", "-q", initial)  # the same batch again, the other way
    _git(root, "clean", "-fdxq", "-e", ".ce/config.toml")
    return elapsed, disk


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="ce-bench-large-") as tmp:
        start = time.perf_counter()
        root = make_large_repo(Path(tmp))
        made = time.perf_counter() - start
        full_add, full_remove, full_disk = measure_worktrees(root, None)
        sparse_add, sparse_remove, sparse_disk = measure_worktrees(root, ["pkg1"])
        full_batch, full_batch_disk = time_batch(root, sparse=False)
        sparse_batch, sparse_batch_disk = time_batch(root, sparse=True)
    speedup = full_add / sparse_add
    name = f"large repo ({FILES // 1000}k files, generated in {made:.1f} s)"
    return [
        Row(
            name=f"{name}: worktree add",
            figures=f"full {full_add:.2f} s, sparse (1 of {FILES // PER_DIR} dirs) "
            f"{sparse_add:.2f} s",
            ratio=f"sparse {speedup:.1f}x faster (limit: at least {MIN_SPEEDUP:g}x)",
            verdict="ok" if speedup >= MIN_SPEEDUP else "OVER",
        ),
        Row(
            name=f"{name}: worktree remove",
            figures=f"full {full_remove:.2f} s, sparse {sparse_remove:.2f} s",
            ratio=f"sparse {full_remove / sparse_remove:.1f}x faster",
            verdict="",
        ),
        Row(
            name=f"{name}: disk per worktree",
            figures=f"full {_mb(full_disk)}, sparse {_mb(sparse_disk)}",
            ratio=f"sparse {full_disk / sparse_disk:.0f}x smaller",
            verdict="",
        ),
        Row(
            name=f"{name}: ce batch of {PRPS} PRPs",
            figures=f"full {full_batch:.2f} s ({_mb(full_batch_disk)}/worktree), sparse "
            f"{sparse_batch:.2f} s ({_mb(sparse_batch_disk)}/worktree)",
            ratio=f"sparse {full_batch / sparse_batch:.1f}x faster",
            verdict="",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
