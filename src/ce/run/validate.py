"""Validation gates L1-L4, run on every result: never trust an agent's "done"."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ce import fsio, git, proc
from ce.config import ValidateConfig
from ce.core.excerpt import failure_lines
from ce.core.names import parse_checkpoint
from ce.core.paths import covers, is_literal
from ce.core.text import strip_escapes
from ce.prp.model import Prp
from ce.run.detect import SCAN_CAP, detect_test_command, read_regular
from ce.run.record import LevelResult

LEVELS = (1, 2, 3, 4)
_OUTPUT_TAIL = 40
_MARKER = re.compile(r"^(<{7} |>{7} )", re.MULTILINE)
# run/orchestrator.py still matches subjects with this; new code asks ce.core.names.


@dataclass(frozen=True, kw_only=True)
class ValidationTarget:
    """What a gate looks at: a checked-out tree and, for branch checks, the range of its work."""

    worktree: Path
    base: str
    head: str
    prp: Prp | None = None
    prp_relpath: str | None = None  # the PRP file inside the repository, excluded from drift
    branch_checks: bool = True  # structure and drift: for a PRP's branch, not a merged tree
    log: Path | None = None  # the PRP's log: each check's output and verdict are added to it
    yours_from: str | None = None  # the commits after this one are the user's: any subject
    commits: Sequence[git.Commit] | None = None  # base..head, when the caller just read them


def level_key(level: int) -> str:
    return f"level_{level}"


def first_failure(results: Mapping[str, LevelResult]) -> tuple[int, LevelResult] | None:
    for level in LEVELS:
        result = results.get(level_key(level))
        if result is not None and not result.passed:
            return level, result
    return None


class _Changes:
    """What the gates ask git about the work, asked once per validation."""

    def __init__(self, target: ValidationTarget) -> None:
        self.repo = git.Repo(target.worktree)
        self.target = target

    @functools.cached_property
    def files(self) -> list[str]:
        """What the file checks look at: what the work changed since its base; for a tree
        checked as a tree with nothing beyond its base (`ce validate` on the target itself),
        every file it tracks."""
        if self.target.base == self.target.head and not self.target.branch_checks:
            return sorted(self.repo.tracked(["."]))
        return self.repo.changed_files(self.target.base, self.target.head)

    @functools.cached_property
    def commits(self) -> Sequence[git.Commit]:
        known = self.target.commits
        return self.repo.commits(self.target.base, self.target.head) if known is None else known

    @functools.cached_property
    def yours(self) -> set[str]:
        """The user's commits (`yours_from`): L1 asks them for no checkpoint subject."""
        start = self.target.yours_from
        return {c.sha for c in self.repo.commits(start, self.target.head)} if start else set()


_Gate = Callable[
    [ValidationTarget, ValidateConfig, Mapping[str, str] | None, _Changes], LevelResult
]


def run_levels(
    target: ValidationTarget,
    config: ValidateConfig,
    levels: Iterable[int],
    env: Mapping[str, str] | None = None,
) -> dict[str, LevelResult]:
    """Run the gates in order; stop at the first failure (later levels are not run)."""
    gates: dict[int, _Gate] = {1: _level1, 2: _level2, 3: _level3, 4: _level4}
    changes = _Changes(target)
    results: dict[str, LevelResult] = {}
    before: dict[str, _Stamp] | None = None  # taken before the first level that runs a command
    for level in sorted(set(levels)):
        if before is None and _may_run_command(level, target, config):
            before = _tracked_state(changes.repo)
        result = gates[level](target, config, env, changes)
        # Only a command can change files: the built-in gates read them (one status saved each).
        ran = result.ran_command and before is not None
        changed = _changed_since(changes.repo, before or {}) if ran else []
        if changed:
            # What passed is the tree the check produced, not what is committed (and merged).
            errors = [f"changed tracked files: {', '.join(changed)}", *result.errors]
            result = replace(result, passed=False, errors=errors)
        tree = "" if target.branch_checks else "merged "  # the lane's checks of a merge
        _log(target, f"[ce] validation {tree}L{level}: {_verdict(result)}\n")
        results[level_key(level)] = result
        if not result.passed:
            break
    return results


_Stamp = tuple[int, int, int] | None


def tree_checks(config: ValidateConfig, root: Path, levels: Iterable[int] = (2, 3, 4)) -> bool:
    """Whether the gates of `levels` over a merged tree (no branch checks) can find anything:
    a command configured or detected in `root`, or the built-in syntax check of `level2`."""
    wanted = set(levels)
    commands = {1: config.level1, 2: config.level2, 3: config.level3, 4: config.level4}
    if any((commands[n] or "").strip() for n in wanted) or (2 in wanted and config.level2 is None):
        return True
    return 3 in wanted and config.level3 is None and detect_test_command(root) is not None


def _may_run_command(level: int, target: ValidationTarget, config: ValidateConfig) -> bool:
    """Whether the gate of `level` may run a command (the built-in gates only read files)."""
    if _command_for(level, target, config):
        return True
    return level == 3 and _command_for(3, target, config) is None


def _tracked_state(repo: git.Repo) -> dict[str, _Stamp]:
    """The tracked files with uncommitted changes, each with its (inode, size, mtime)."""
    return {name: _stamp(repo.path / name) for name in repo.dirty_tracked()}


def _changed_since(repo: git.Repo, before: dict[str, _Stamp]) -> list[str]:
    """The tracked files a check changed: newly changed, rewritten again, or restored."""
    now = _tracked_state(repo)
    return sorted(
        name for name in now.keys() | before.keys() if now.get(name, 0) != before.get(name, 0)
    )


def _stamp(path: Path) -> _Stamp:
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _read_text(path: Path) -> str | None:
    """`read_regular` as UTF-8; None when it is not (a file cut at the cap may end
    mid-character)."""
    data = read_regular(path, SCAN_CAP)
    if data is None:
        return None
    try:
        return data.decode("utf-8", errors="strict" if len(data) < SCAN_CAP else "ignore")
    except UnicodeDecodeError:
        return None


def _command_for(level: int, target: ValidationTarget, config: ValidateConfig) -> str | None:
    return prp_command(level, target.prp, config)


def prp_command(level: int, prp: Prp | None, config: ValidateConfig) -> str | None:
    """The PRP's `validation: {levelN: ...}` wins over the repository's configuration."""
    key = f"level{level}"
    if prp is not None and key in prp.validation:
        return prp.validation[key]
    value: str | None = getattr(config, key)
    return value


def run_command(
    command: str, target: ValidationTarget, config: ValidateConfig, env: Mapping[str, str] | None
) -> LevelResult:
    argv = shlex.split(command)
    if not argv:
        return LevelResult(passed=True, skipped=True)
    try:
        done = proc.run(
            argv,
            cwd=target.worktree,
            env=env,
            check=False,
            timeout=config.timeout_minutes * 60,
            contain=True,  # nothing a check started outlives it
        )
    except proc.ProcessError as exc:
        _log(target, f"[ce] $ {command}\n[ce] {exc}\n")
        errors = [f"`{command}`: {exc}"]
        return LevelResult(passed=False, errors=errors, ran_command=True, command=command)
    # Tools colour their output even into a pipe (FORCE_COLOR, --color=yes): kept as text.
    output = strip_escapes(done.stdout + done.stderr)
    _log(target, f"[ce] $ {command}\n{output.rstrip()}\n[ce] exit code {done.returncode}\n")
    result = LevelResult(
        passed=done.returncode == 0, ran_command=True, command=command, exit_code=done.returncode
    )
    if not result.passed:
        tail = output.strip().splitlines()[-_OUTPUT_TAIL:]
        result.errors = [f"`{command}` exited {done.returncode}", *tail]
        result.excerpt = list(failure_lines(output))
    return result


def _verdict(result: LevelResult) -> str:
    if result.skipped:
        return "skipped" + (f" ({result.errors[0]})" if result.errors else "")
    if result.passed:
        return "passed"
    return "failed: " + "; ".join(result.errors[:1] if result.command else result.errors)


def _log(target: ValidationTarget, text: str) -> None:
    """What a check printed, into the PRP's log (masked), for `ce logs` and the reports."""
    if target.log is not None:
        fsio.append_log(target.log, text)


def _level1(
    target: ValidationTarget,
    config: ValidateConfig,
    env: Mapping[str, str] | None,
    changes: _Changes,
) -> LevelResult:
    errors: list[str] = []
    if target.prp is not None and target.branch_checks:
        errors += _structure_errors(changes, target, target.prp)
    errors += _conflict_marker_errors(changes, target)
    if errors:
        return LevelResult(passed=False, errors=errors)
    command = _command_for(1, target, config)
    return run_command(command, target, config, env) if command else LevelResult(passed=True)


def _structure_errors(changes: _Changes, target: ValidationTarget, prp: Prp) -> list[str]:
    commits = changes.commits
    if not commits:
        return ["the branch has no commits beyond its base"]
    errors = [
        f"commit {c.sha[:10]} {c.subject!r} does not follow `{prp.id}: Phase N - <title>`"
        for c in commits
        if not c.subject.startswith(f"{prp.id}: ")
        and not c.subject.startswith("Merge ")
        and c.sha not in changes.yours
    ]
    if not changes.yours and not any(parse_checkpoint(c.subject) for c in commits):
        errors.append(f"no checkpoint commit `{prp.id}: Phase N - <title>` on the branch")
    for declared in prp.files:
        if not is_literal(declared):
            continue
        if not (target.worktree / declared).exists():
            errors.append(f"declared file {declared} does not exist")
    return errors


def _conflict_marker_errors(changes: _Changes, target: ValidationTarget) -> list[str]:
    errors = []
    for name in changes.files:
        text = _read_text(target.worktree / name)
        if text is None:
            continue
        if _MARKER.search(text) and "\n=======" in text:
            errors.append(f"conflict markers in {name}")
    return errors


def _level2(
    target: ValidationTarget,
    config: ValidateConfig,
    env: Mapping[str, str] | None,
    changes: _Changes,
) -> LevelResult:
    command = _command_for(2, target, config)
    if command is not None:
        return run_command(command, target, config, env)
    errors = []
    for name in changes.files:
        if name.endswith(".py"):
            errors += _compile_errors(target.worktree / name, name)
    return LevelResult(passed=not errors, errors=errors)


def _compile_errors(path: Path, name: str) -> list[str]:
    source = read_regular(path, SCAN_CAP + 1)
    if source is None or len(source) > SCAN_CAP:
        return []  # not a regular file (a symlink is not followed), or too large to judge
    try:
        compile(source, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [f"{name}:{exc.lineno}: {exc.msg}"]
    except ValueError as exc:  # e.g. null bytes
        return [f"{name}: {exc}"]
    return []


def _level3(
    target: ValidationTarget,
    config: ValidateConfig,
    env: Mapping[str, str] | None,
    changes: _Changes,
) -> LevelResult:
    command = _command_for(3, target, config)
    if command is None:
        detected = detect_test_command(target.worktree)
        if detected is None:
            return LevelResult(passed=True, skipped=True, errors=["no test command found"])
        command = shlex.join(detected)
    return run_command(command, target, config, env)


def _level4(
    target: ValidationTarget,
    config: ValidateConfig,
    env: Mapping[str, str] | None,
    changes: _Changes,
) -> LevelResult:
    errors: list[str] = []
    if target.prp is not None and target.branch_checks:
        errors += _drift_errors(changes, target, target.prp, config.drift_threshold)
    if errors:
        return LevelResult(passed=False, errors=errors)
    # Nothing to measure drift against: said, not passed (issue 16 item 2).
    unchecked = target.prp is not None and target.branch_checks and not target.prp.files
    command = _command_for(4, target, config)
    result = run_command(command, target, config, env) if command else None
    if result is None:
        result = LevelResult(passed=True, skipped=unchecked)
    if unchecked:
        result.errors.append(DRIFT_NOT_CHECKED)
    return result


DRIFT_NOT_CHECKED = "drift: not checked (no files declared)"


def drift(changed: Sequence[str], declared: Sequence[str]) -> tuple[float, list[str]]:
    """Share (in %) of changed files outside the declared ones, and those files."""
    outside = [name for name in changed if not any(covers(d, name) for d in declared)]
    return (100.0 * len(outside) / len(changed) if changed else 0.0), outside


def _drift_errors(
    changes: _Changes, target: ValidationTarget, prp: Prp, threshold: float
) -> list[str]:
    if not prp.files:
        return []
    changed = [name for name in changes.files if name != target.prp_relpath]
    share, outside = drift(changed, prp.files)
    if share < threshold:
        return []
    listed = ", ".join(outside[:10]) + (" ..." if len(outside) > 10 else "")
    return [
        f"drift {share:.0f}% >= {threshold:.0f}%: {len(outside)} of {len(changed)} changed files "
        f"are outside the PRP's declared files ({listed})"
    ]
