"""What a command gives back: `Completed` when it ran, `ProcessError` when it failed, could
not start, or timed out."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Self

from ce.core.errors import CeFailure

_STDERR_TAIL_LINES = 20
_EXIT_NOT_FOUND = 127  # the shell's codes for "command not found" / "cannot execute"
_EXIT_CANNOT_EXECUTE = 126


@dataclass(frozen=True, kw_only=True)
class Completed:
    """A finished command and what it printed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class ProcessError(CeFailure):
    """A command failed, could not start, or timed out.

    `returncode` is the exit code (negative: killed by that signal; 127: not found).
    """

    def __init__(
        self,
        *,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        reason: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason
        super().__init__(self._describe())

    @classmethod
    def from_completed(cls, completed: Completed, *, reason: str | None = None) -> Self:
        return cls(
            argv=completed.argv,
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            reason=reason,
        )

    def _describe(self) -> str:
        what = self.reason or "failed"
        lines = [f"command {what} (exit code {self.returncode}): {shlex.join(self.argv)}"]
        tail = self.stderr.rstrip().splitlines()[-_STDERR_TAIL_LINES:]
        lines.extend(f"  {line}" for line in tail)
        return "\n".join(lines)


@contextlib.contextmanager
def starting(args: tuple[str, ...]) -> Iterator[None]:
    """Turn a failure to start (missing binary, bad cwd) into a ProcessError."""
    try:
        yield
    except OSError as exc:
        code = _EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else _EXIT_CANNOT_EXECUTE
        raise ProcessError(
            argv=args, returncode=code, stderr=str(exc), reason="could not start"
        ) from exc
