"""What the agent presets (claude, codex, gemini, aider) share: finding and checking the CLI,
model names, the nudge, and the protocol for executors whose sessions can be resumed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import ClassVar, Protocol

from ce import proc
from ce.agents.base import ExecutorJob
from ce.config import AgentConfig
from ce.core.errors import CeError
from ce.core.vocab import MODEL_TIERS

NUDGE_OVERRIDE = Path(".ce") / "templates" / "nudge.md"
_VERSION = re.compile(r"\d+\.\d+\.\d+")
_PROBE_SECONDS = 60.0
_MAX_PROMPT_ARG = 100_000  # bytes; Linux refuses one argument over 128 KiB


@dataclass(frozen=True, kw_only=True)
class CliPackage:
    """Where an agent CLI comes from and the version `ce` is tested against."""

    agent: str  # "Claude Code"
    preset: str  # "claude": the `[executor.<preset>]` table
    binary: str  # default executable name
    installer: str  # "npm install -g" or "pipx install"
    package: str  # "@anthropic-ai/claude-code"
    pinned: str  # the tested version

    @property
    def install(self) -> str:
        separator = "@" if self.installer.startswith("npm") else "=="
        return f"{self.installer} {self.package}{separator}{self.pinned}"

    def missing(self, what: str) -> CeError:
        return CeError(
            f"{what}. Install the {self.agent} CLI ({self.pinned} is the tested version): "
            f'`{self.install}`, or set `binary = "/path/to/{self.binary}"` under '
            f"[executor.{self.preset}] in .ce/config.toml."
        )


class AgentPreset:
    """What every preset has: its CLI package, its `[executor.<name>]` table, a preflight that
    checks the CLI's version and flags (`flags()`, listed by `help_args`)."""

    package: ClassVar[CliPackage]
    help_args: ClassVar[tuple[str, ...]] = ("--help",)

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.version: str | None = None  # read by preflight

    def flags(self) -> list[str]:
        raise NotImplementedError

    def preflight(self, repo_root: Path) -> None:
        self.version = check_cli(self.package, self.config.binary, self.flags(), self.help_args)

    @property
    def binary(self) -> str:
        return binary_or_name(self.package, self.config.binary)


class Resumable(Protocol):
    """An executor whose agent keeps a session that a later process can continue."""

    def nudge_command(self, job: ExecutorJob, session_id: str) -> list[str] | None:
        """The argv that resumes `session_id` with a short nudge (None: nudging is off)."""


def check_cli(
    package: CliPackage,
    configured: str | None,
    flags: Iterable[str],
    help_args: Iterable[str] = ("--help",),
) -> str:
    """Preflight: the CLI is found, says its version, and lists every flag `ce` will pass.
    Returns the version."""
    binary = find_binary(package, configured)
    version = read_version(package, binary)
    require_flags(package, binary, flags, help_args)
    return version


def find_binary(package: CliPackage, configured: str | None) -> str:
    name = configured or package.binary
    found = shutil.which(name)
    if found is None:
        raise package.missing(f"`{name}` was not found (PATH or the configured path)")
    return found


def binary_or_name(package: CliPackage, configured: str | None) -> str:
    """The CLI's path when it can be found, else its name (preflight reports a missing one)."""
    name = configured or package.binary
    return shutil.which(name) or name


def read_version(package: CliPackage, binary: str, args: Iterable[str] = ("--version",)) -> str:
    done = _probe(package, [binary, *args])
    match = _VERSION.search(done)
    if match is None:
        raise package.missing(f"`{binary} --version` printed no version ({done.strip()[:200]!r})")
    return match.group(0)


def require_flags(
    package: CliPackage, binary: str, flags: Iterable[str], help_args: Iterable[str] = ("--help",)
) -> None:
    """Every flag `ce` will pass must appear in the CLI's help, so a renamed flag fails here."""
    text = _probe(package, [binary, *help_args])
    missing = [flag for flag in flags if not _mentions(text, flag)]
    if missing:
        raise package.missing(
            f"{binary} does not accept {', '.join(missing)} (its `{' '.join(help_args)}` does "
            "not list them); this version is too old or too new for ce"
        )


def _mentions(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def _probe(package: CliPackage, argv: list[str]) -> str:
    try:
        done = proc.run(argv, check=False, timeout=_PROBE_SECONDS)
    except proc.ProcessError as exc:
        raise package.missing(f"`{' '.join(argv)}` could not run: {exc.reason or exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise package.missing(
            f"`{' '.join(argv)}` exited with code {done.returncode}: {tail[0][:200]}"
        )
    return done.stdout + done.stderr


def model_name(job: ExecutorJob, config: AgentConfig, defaults: Mapping[str, str]) -> str | None:
    """The agent's model for the plan's tier: the config's mapping, else the preset's default.

    A model that is not a tier name (a PRP's own `model: gpt-5`) passes through unchanged; None
    means "do not pass a model flag: the CLI's own default".
    """
    tier = job.model
    if tier in config.models:
        return config.models[tier]
    if tier in MODEL_TIERS:
        return defaults.get(tier)
    return tier or None


def prompt_argument(job: ExecutorJob, prompt: Path) -> str:
    """The prompt text for the command line; a pointer to its file when too long for one."""
    text = prompt.read_text(encoding="utf-8")
    if len(text.encode()) <= _MAX_PROMPT_ARG:
        return text
    return (
        f"Your instructions for {job.prp.id} are in the file {prompt}. "
        "Read that whole file first and follow it exactly."
    )


def nudge_text(job: ExecutorJob, config: AgentConfig) -> str:
    """What a stalled agent is told when its session is resumed."""
    override = job.repo_root / NUDGE_OVERRIDE
    if config.nudge_message:
        text = config.nudge_message
    elif override.is_file():
        text = override.read_text(encoding="utf-8")
    else:
        text = (Path(__file__).parent / "templates" / "nudge.md").read_text(encoding="utf-8")
    phases = ", ".join(str(n) for n in job.phases_left) or "none"
    return (
        Template(text)
        .safe_substitute(
            prp_id=job.prp.id,
            prp_path=str(job.prp_path),
            resume_from=str(job.resume_from),
            phases_left=phases,
            result_path=str(job.result_path),
        )
        .strip()
    )
