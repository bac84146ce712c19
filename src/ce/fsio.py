"""The one atomic file writer and the one log appender.

State, reports and PRP files are replaced whole (temporary file, rename), so a reader, a crash
or a full disk leaves the old file or the new one, never half of one, and never a stray
temporary file. Logs are appended to, masked, from any thread.

Durability: once `write_atomic` returns, the new file is the kernel's, and no `kill -9` of ce
can lose it. Surviving a power cut as well costs two fsyncs (the file, then its directory), so
it is asked for (`durable=True`, the default) only where the record is not in git and a power
cut must not lose it; a file that git records right after (a PRP's status) is written without.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ce.secrets import mask


def write_atomic(
    path: Path, data: str | bytes, *, temp_dir: Path | None = None, durable: bool = True
) -> None:
    """Replace `path` with `data`; an existing file keeps its permission bits; `durable`: on
    disk before this returns (fsync of the file and of its directory).

    The temporary file goes beside `path`, or into `temp_dir` when a stray one must not appear
    beside it even if the process is killed (inside a worktree, an agent's `git add --all`
    would commit it); on another file system than `path`, beside it after all. On failure
    (ENOSPC, EIO) the temporary file is removed and the error raised.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent if temp_dir is None else temp_dir
    try:
        _replace(path, payload, folder, durable)
    except OSError as exc:
        if exc.errno != errno.EXDEV or folder == path.parent:
            raise
        _replace(path, payload, path.parent, durable)
    if durable:
        _fsync_dir(path.parent)


def _replace(path: Path, payload: bytes, folder: Path, durable: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.urandom(4).hex()}.tmp"
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None  # a new file: 0o666 less the umask, as `open` would make it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    """The rename itself survives a power loss only once its directory is on disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_log(path: Path, text: str) -> int:
    """Append `text`, masked, to the log at `path` (its directory created); the bytes written.

    One write on an O_APPEND descriptor, like the agent's own output: a short line lands
    whole, never interleaved with another writer's."""
    data = mask(text).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        log.write(data)
    return len(data)
