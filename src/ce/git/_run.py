"""The one way a git process starts: `run_git`, with a scrubbed environment and a time limit.

Git runs with the inherited `GIT_*` variables removed: inside a hook `GIT_DIR`,
`GIT_WORK_TREE` or `GIT_INDEX_FILE` would point it at another repository. `LC_ALL=C` keeps
its output parseable. Everything git runs for ce, agents and checks included, runs with
`maintenance.auto=false`: no `gc --auto` starts in the middle of a batch (it costs a process per
commit, and packs and prunes while parallel worktrees write objects); ce runs the repository's
maintenance once, when the batch is cleaned up (`Repo.maintain`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ce.core.errors import CeError
from ce.proc import Completed, ProcessError, run

MIN_GIT = (2, 38)  # `git merge-tree --write-tree`
# Every git call has a time limit (a hook, a lock, a network mount must not hang a batch):
# generous, for pushes and worktree adds in large repositories; `CE_GIT_TIMEOUT` overrides it.
DEFAULT_TIMEOUT = 600.0
# For ce's own steps that need no hook (its integration worktree, its worktree adds, its
# checkpoint commits): a hook an agent installed must not run, let alone block the lane.
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")

# After pre-commit's `no_git_env`: what may pass through is transport, config and identity.
_KEPT_GIT_VARS = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSL_CAINFO",
        "GIT_SSL_NO_VERIFY",
        "GIT_CONFIG_COUNT",
        "GIT_HTTP_PROXY",
        "GIT_HTTP_PROXY_AUTHMETHOD",
        "GIT_ALLOW_PROTOCOL",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
    }
)
_KEPT_GIT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


class GitError(ProcessError):
    """A git command failed: the message shows the command, its exit code and git's stderr."""


class DirectoryGone(GitError, CeError):
    """The checkout a git command was to run in does not exist (removed or moved meanwhile):
    the environment, not a bug (exit 2), yet still a failed git command to its callers."""

    def __init__(self, directory: Path, failed: ProcessError) -> None:
        self.directory = directory
        super().__init__(argv=failed.argv, returncode=failed.returncode, stderr=failed.stderr)

    def _describe(self) -> str:
        return (
            f"{self.directory} does not exist (it was removed or moved while ce worked in it): "
            "git cannot run there."
        )


def git_env(environ: Mapping[str, str] | None = None, *, c_locale: bool = True) -> dict[str, str]:
    """The environment git runs with: `environ` (default: ours) without stray GIT_* variables,
    and (for output we parse) the C locale."""
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if _keep(name)}
    if c_locale:
        env["LC_ALL"] = "C"
    return _with_config(env, "maintenance.auto", "false")


def _with_config(env: dict[str, str], key: str, value: str) -> dict[str, str]:
    """`env` with one more `git -c key=value` pair after those it carries (GIT_CONFIG_COUNT)."""
    try:
        count = max(0, int(env.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        count = 0  # git itself refuses such a count; ours then stands alone
    env[f"GIT_CONFIG_KEY_{count}"] = key
    env[f"GIT_CONFIG_VALUE_{count}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


def _keep(name: str) -> bool:
    return (
        not name.startswith("GIT_") or name in _KEPT_GIT_VARS or name.startswith(_KEPT_GIT_PREFIXES)
    )


def timeout_seconds() -> float:
    """The time limit of one git call: `CE_GIT_TIMEOUT` (seconds), else DEFAULT_TIMEOUT."""
    configured = os.environ.get("CE_GIT_TIMEOUT", "")
    try:
        return float(configured) if float(configured) > 0 else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None,
    check: bool = True,
    input: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run `git <args>` in `cwd`: every git process of `ce` starts here."""
    argv = ("git", *args)
    env = git_env() | dict(extra_env or {})
    try:
        completed = run(
            argv,
            cwd=cwd,
            env=env,
            check=False,
            input=input,
            timeout=timeout or timeout_seconds(),
            executable=_program(env.get("PATH", os.defpath)),
        )
    except ProcessError as exc:  # git missing, cwd gone, or out of time
        if cwd is not None and exc.reason == "could not start" and not cwd.is_dir():
            raise DirectoryGone(cwd, exc) from exc
        reason = exc.reason
        if reason and reason.startswith("timed out"):
            reason += " (CE_GIT_TIMEOUT=<seconds> raises the limit)"
        raise GitError(
            argv=exc.argv, returncode=exc.returncode, stderr=exc.stderr, reason=reason
        ) from exc
    if check and completed.returncode != 0:
        raise GitError.from_completed(completed)
    return completed


_FOUND: dict[str, str] = {}  # PATH -> the git found on it


def _program(path: str) -> str:
    """The git on `path`, looked up once per PATH: a spawn by name tries each directory before
    git's in turn, a failed exec each (8 a call on a PATH of pyenv and cargo shims)."""
    found = _FOUND.get(path)
    if found is None:
        found = _FOUND[path] = shutil.which("git", path=path) or "git"
    return found


def require_git(min: tuple[int, ...] = MIN_GIT) -> tuple[int, ...]:
    """The installed git's version; a CeError when it is missing or older than `min`."""
    why = f"ce needs git >= {_dotted(min)} for `git merge-tree --write-tree`"
    try:
        output = run_git(["--version"], cwd=None).stdout
    except GitError as exc:
        raise CeError(f"git could not be run ({exc.stderr.strip()}): {why}.") from exc
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", output)
    if match is None:
        raise CeError(f"cannot read the git version from {output.strip()!r}: {why}.")
    version = tuple(int(part) for part in match.groups(default="0"))
    if version < min:
        raise CeError(f"found git {_dotted(version)} at {shutil.which('git')}: {why}. Upgrade git.")
    return version


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)
