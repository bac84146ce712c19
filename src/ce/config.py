"""Configuration: `.ce/config.toml` (top level) or `[tool.ce]` in `pyproject.toml`; flags win."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ce.core import vocab
from ce.core.errors import CeError
from ce.core.vocab import BackendName, ExecutorName, Schedule


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidateConfig(_Section):
    # Split like shlex and run without a shell; "" disables a level's command.
    level1: str = ""
    level2: str | None = None  # None: py_compile of the changed Python files
    level3: str | None = None  # None: detected (pytest, npm test, make test) or skipped
    level4: str = ""
    review: str = ""  # run only by the auto-review after each stage (e.g. a slow e2e suite)
    drift_threshold: float = Field(default=30.0, ge=0, le=100)
    timeout_minutes: float = Field(default=30.0, gt=0)


class MonitorConfig(_Section):
    poll_seconds: float = Field(default=60.0, gt=0)
    warning_after: float = Field(default=300.0, gt=0)
    stalled_after: float = Field(default=600.0, gt=0)
    retries: int = Field(default=1, ge=0)
    grace_seconds: float = Field(default=5.0, ge=0)
    # Least time between two launches of executors (None: 2s for the agent presets, whose
    # sessions share an account's rate limits; 0 for script and command).
    stagger_seconds: float | None = Field(default=None, ge=0)


class CommandExecutorConfig(_Section):
    run: str = ""


class AgentConfig(_Section):
    """`[executor.claude]`, `[executor.codex]`, ...: how `ce` runs that agent CLI."""

    binary: str | None = None  # default: the CLI's usual name, found on PATH
    permission_mode: str | None = None  # None: the preset's mode that can edit unattended
    allowed_tools: tuple[str, ...] | None = None  # added to what the preset allows
    extra_args: tuple[str, ...] = ()
    models: dict[str, str] = Field(default_factory=dict)  # tier (haiku/sonnet/opus) -> model
    max_budget_usd: float | None = Field(default=None, gt=0)  # per PRP, where the CLI supports it
    skip_permissions: bool = False  # the CLI's "bypass every permission check": opt-in only
    fail_on_denials: bool = True  # a denied tool call fails the PRP (it blocked work)
    nudge: bool = True  # a stalled agent is first resumed with a nudge, then relaunched
    nudge_message: str = ""  # "" = the built-in nudge


class ExecutorTables(_Section):
    command: CommandExecutorConfig = CommandExecutorConfig()
    claude: AgentConfig = AgentConfig()
    codex: AgentConfig = AgentConfig()
    gemini: AgentConfig = AgentConfig()
    aider: AgentConfig = AgentConfig()


class HooksConfig(_Section):
    post_stage: str = ""
    post_batch: str = ""
    # A hook still running after this long is stopped with everything it started.
    timeout_minutes: float = Field(default=10.0, gt=0)


def _splits_like_shlex(value: str) -> str:
    shlex.split(value)  # a ValueError (an open quote) is reported with the key
    return value


NotifyEvent = Literal["paused", "failed", "finished", "stalled", "budget"]


class NotifyConfig(_Section):
    """`[notify]`: the event as JSON on `command`'s stdin (split like shlex, no shell) and/or
    POSTed to `webhook`; never blocks or fails the batch (see `ce.run.notify`)."""

    command: Annotated[str, AfterValidator(_splits_like_shlex)] = ""
    webhook: str = ""
    on: tuple[NotifyEvent, ...] = ("paused", "failed", "finished")
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value.strip() and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r}: write an http:// or https:// URL")
        return value


# What `[backend] runtime_env` may hold: Ray's own keys (https://docs.ray.io runtime environments).
_RUNTIME_ENV_KEYS = frozenset(
    {"env_vars", "py_modules", "working_dir", "pip", "uv", "conda", "excludes", "config"}
)
_ADDRESS = re.compile(r"(auto|(ray://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5})")


class BackendConfig(_Section):
    """`[backend]`: where the PRPs' attempts run. `ray`: an actor per launch on a Ray cluster at
    `address`, on nodes with the `slot_resource` custom resource, started with `runtime_env`."""

    name: BackendName = "local"
    address: str = "auto"  # "auto" (the cluster `ray start` made here), HOST:PORT, ray://HOST:PORT
    slot_resource: str = Field(default="ce_slot", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    relaunches: int = Field(default=2, ge=0)  # per PRP, after its node was lost
    # How long agents go on without their coordinator (for `--resume` to re-attach to them).
    coordinator_timeout_seconds: float = Field(default=600.0, gt=0)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value.strip()):
            raise ValueError(f"{value!r}: write auto, HOST:PORT or ray://HOST:PORT")
        return value.strip()

    @field_validator("runtime_env")
    @classmethod
    def _runtime_env(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _RUNTIME_ENV_KEYS)
        if unknown:
            known = ", ".join(sorted(_RUNTIME_ENV_KEYS))
            raise ValueError(f"unknown key(s) {', '.join(unknown)}: Ray knows {known}")
        env_vars = value.get("env_vars", {})
        if not isinstance(env_vars, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()
        ):
            raise ValueError('env_vars: write a table of strings, e.g. {GIT_AUTHOR_NAME = "x"}')
        return value


class RunSettings(_Section):
    """How the PRPs run: how many at once, for how long, in which order, for how much."""

    max_parallel: int = Field(default=4, ge=0)  # 0 = unlimited
    timeout_minutes: float = Field(default=60.0, gt=0)
    # Once the PRPs' agents have spent this much (USD, as they report it), no new PRP starts.
    batch_budget_usd: float | None = Field(default=None, gt=0)
    schedule: Schedule = "stages"


class WorktreeConfig(_Section):
    """Each new worktree: `setup` runs in it before the agent (split like shlex, no shell);
    sparse: only the PRP's declared paths' directories and `sparse_always` are checked out;
    CE_PORT_BASE = port_base + ports_per_prp * (the PRP's place in the plan)."""

    worktree_root: str | None = None  # default: beside the repository
    setup: str = ""
    sparse: bool = False
    sparse_always: tuple[str, ...] = ()
    port_base: int = Field(default=20000, ge=1024, le=65535)
    ports_per_prp: int = Field(default=100, ge=1, le=10000)

    @field_validator("setup")
    @classmethod
    def _split_like_shlex(cls, value: str) -> str:
        shlex.split(value)  # a ValueError (an open quote) is reported with the key
        return value

    @field_validator("sparse_always")
    @classmethod
    def _inside_the_repository(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(path.strip().removeprefix("./") for path in paths)
        for path in cleaned:
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{path!r}: write paths relative to the repository root")
        return cleaned


class LaneConfig(_Section):
    """The merge lane: merged trees checked at once, each on top of the one before (None: 4,
    or the machine's cores if fewer; 1: one at a time); branches merged into one tree that is
    checked once (a failure is bisected to find the culprit); what a conflict leads to; the
    push after each merge."""

    merge_parallel: int | None = Field(default=None, ge=1, le=64)
    merge_batch: int = Field(default=1, ge=1, le=1000)
    conflict_policy: vocab.ConflictPolicy = "pause"
    push: bool = False


class ReviewConfig(_Section):
    auto_review: bool = True
    review_agent: bool = False  # also let the executor review each stage (PASSED/FAILED JSON)


# The top-level keys of the configuration file that Config keeps in a sub-record.
_GROUPS: dict[str, type[_Section]] = {
    "run": RunSettings,
    "worktrees": WorktreeConfig,
    "lane": LaneConfig,
    "reviews": ReviewConfig,
}


class Config(_Section):
    """The configuration. Its keys are all top level or `[validate]`, `[monitor]`,
    `[executor.*]`, `[hooks]`, `[notify]`, `[backend]` in the file; related top-level ones are
    grouped here
    (`run`, `worktrees`, `lane`, `reviews`), which the file never names."""

    prp_dir: str = "PRPs/feature-requests"
    executor: ExecutorName = "claude"
    run: RunSettings = RunSettings()
    worktrees: WorktreeConfig = WorktreeConfig()
    lane: LaneConfig = LaneConfig()
    reviews: ReviewConfig = ReviewConfig()
    validate_: ValidateConfig = Field(default=ValidateConfig(), alias="validate")
    monitor: MonitorConfig = MonitorConfig()
    executor_tables: ExecutorTables = Field(default=ExecutorTables(), alias="executors")
    hooks: HooksConfig = HooksConfig()
    notify: NotifyConfig = NotifyConfig()
    backend: BackendConfig = BackendConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def validation(self) -> ValidateConfig:
        return self.validate_

    @model_validator(mode="before")
    @classmethod
    def _grouped(cls, data: Any) -> Any:
        """The file's top-level keys into their sub-records."""
        if not isinstance(data, dict):
            return data
        flat = dict(data)
        for group, section in _GROUPS.items():
            keys = [key for key in section.model_fields if key in flat]
            if keys:
                given = flat.get(group) or {}
                table = given.model_dump() if isinstance(given, BaseModel) else dict(given)
                flat[group] = table | {key: flat.pop(key) for key in keys}
        return flat


def _split_executor(raw: dict[str, Any]) -> dict[str, Any]:
    """`executor` is both a name (`executor = "claude"`) and a table (`[executor.claude]`)."""
    data = dict(raw)
    value = data.get("executor")
    if isinstance(value, dict):
        tables = dict(value)
        name = tables.pop("name", None)
        data["executors"] = tables
        if name is None:
            del data["executor"]
        else:
            data["executor"] = name
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CeError(f"{path}: invalid TOML: {exc}. Fix the syntax and run again.") from None
    except OSError as exc:
        raise CeError(f"{path}: cannot read the configuration: {exc.strerror}.") from None


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) > 1 and loc[0] in _GROUPS:
            loc = loc[1:]  # a top-level key in the file
        where = ".".join(str(part) for part in loc) or "(top level)"
        where = where.replace("executors.", "executor.").replace("validate_", "validate")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {where}: unknown setting (remove it or check its spelling)")
        else:
            lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
    return f"{path}: invalid configuration:\n" + "\n".join(lines)


def config_sources(repo_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    sources: list[tuple[Path, dict[str, Any]]] = []
    pyproject = repo_root / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("ce")
        if isinstance(table, dict):
            sources.append((pyproject, table))
    own = repo_root / ".ce" / "config.toml"
    if own.is_file():
        sources.append((own, _read_toml(own)))
    return sources


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    repo_root: Path, overrides: dict[str, Any] | None = None, *, lenient_executor: bool = False
) -> Config:
    """Merge `[tool.ce]`, then `.ce/config.toml`, then command-line overrides.

    `lenient_executor`: an executor name ce does not know is left out (the plan can be shown;
    `unknown_executor` says what is wrong) instead of being an error."""
    data: dict[str, Any] = {}
    for path, raw in config_sources(repo_root):
        for group in sorted(_GROUPS.keys() & raw.keys()):  # not a key of the file
            raise CeError(
                f"{path}: invalid configuration:\n  {group}: unknown setting "
                "(remove it or check its spelling)"
            )
        table = _split_executor(raw)
        if lenient_executor and table.get("executor", vocab.EXECUTORS[0]) not in vocab.EXECUTORS:
            del table["executor"]
        try:
            Config.model_validate(table)
        except ValidationError as exc:
            raise CeError(_format_errors(path, exc)) from None
        data = _deep_merge(data, table)
    data = _deep_merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise CeError(_format_errors(Path("command line"), exc)) from None


def unknown_executor(repo_root: Path) -> tuple[str, str] | None:
    """The executor the configuration names when ce does not know it, with what is wrong."""
    for path, raw in config_sources(repo_root):
        name = _split_executor(raw).get("executor", vocab.EXECUTORS[0])
        if name not in vocab.EXECUTORS:
            return str(name), (
                f"{path}: executor {name!r} is not an executor ce knows: choose one of "
                f"{', '.join(vocab.EXECUTORS)}."
            )
    return None
