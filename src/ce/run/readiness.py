"""A dry run's readiness checks: every check a real run makes before it changes anything,
each failure collected as a finding instead of stopping at the first, and the checks each PRP's
work will have to pass. Nothing is changed here."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from ce.config import ValidateConfig, unknown_executor
from ce.core.errors import CeError, NextStep, Step
from ce.plan.dry_run import DryRun, PlannedCheck
from ce.prp.model import Prp
from ce.run import selection
from ce.run.detect import detect_test_command
from ce.run.load import (
    BatchContext,
    RunOptions,
    check_distinct_names,
    check_leftovers,
    check_no_changes,
    check_tracked_prps,
    load,
)
from ce.run.repository import open_repository
from ce.run.validate import LEVELS, prp_command


def dry_run(
    options: RunOptions, cwd: Path, word: Callable[[CeError], str] = str
) -> tuple[BatchContext, DryRun]:
    """The checked context and the dry run: the plan, the executor, each PRP's checks, and what
    would stop a real run (`word`ed, in the order a real run finds them)."""
    root = open_repository(cwd)[1]
    # A real run refuses a configuration naming an unknown executor, even with --executor.
    unknown = unknown_executor(root)
    context = load(options, cwd, executor_preflight=False)
    found = [] if unknown is None else [unknown[1]]
    executor: str = context.config.executor
    if unknown is not None and not options.overrides.executor:
        executor = unknown[0]
    for check in _checks(context, executor_known=executor == context.config.executor):
        try:
            check()
        except CeError as exc:
            found.append(word(exc))
    plan, validation = context.plan, context.config.validation
    tests = detect_test_command(context.root)  # the checkout every worktree is made from
    # A PRP's checks depend only on its own `validation` and whether it declares files: made
    # once per such shape, not four records per PRP.
    shapes: dict[tuple[object, ...], tuple[PlannedCheck, ...]] = {}

    def checks_of(prp: Prp) -> tuple[PlannedCheck, ...]:
        shape = (*prp.validation.items(), bool(prp.files))
        if shape not in shapes:
            shapes[shape] = planned_checks(prp, validation, tests)
        return shapes[shape]

    return context, DryRun(
        plan=plan,
        batch_id=context.batch_id,
        stage=options.stage,
        executor=executor,
        checks={
            prp_id: checks_of(plan.prps[prp_id])
            for _, ids in plan.to_run(options.stage)
            for prp_id in ids
        },
        problems=tuple(found),
    )


def _checks(context: BatchContext, *, executor_known: bool) -> list[Callable[[], None]]:
    """A real run's checks before its first change, as `load` and `Engine.prepare` make them."""
    options = context.options
    to_run = [p for _, ids in context.plan.to_run(options.stage) for p in ids]
    checks: list[Callable[[], None]] = [lambda: check_distinct_names(context, to_run)]
    if executor_known:
        checks.append(lambda: context.executor.preflight(context.root))
    if options.stage is not None:
        checks.append(lambda: selection.check_earlier_stages(context, options.stage or 0))
    # check_clean's two checks apart: an untracked PRP does not hide a dirty checkout.
    checks += [lambda: check_tracked_prps(context), lambda: check_no_changes(context)]
    if not options.resume:
        checks += [lambda: _not_unfinished(context), lambda: check_leftovers(context, to_run)]
    return checks


def _not_unfinished(context: BatchContext) -> None:
    path = context.state.checkpoint(context.batch_id)
    if path.exists() and selection.unfinished_before(context):
        raise CeError(
            f"Batch {context.batch_id} has an unfinished run ({path}).",
            next_step=NextStep(step=Step.RESUME_OR_CLEANUP, batch_id=context.batch_id),
        )


def planned_checks(
    prp: Prp, config: ValidateConfig, tests: Sequence[str] | None
) -> tuple[PlannedCheck, ...]:
    """What each level will check of `prp`'s work, as `run_levels` will run it (`tests`: the
    test command L3 detects in the checkout its worktree is made from, read once per batch)."""
    return tuple(_planned(level, prp, config, tests) for level in LEVELS)


def _planned(
    level: int, prp: Prp, config: ValidateConfig, tests: Sequence[str] | None
) -> PlannedCheck:
    command = prp_command(level, prp, config)
    source = "prp" if f"level{level}" in prp.validation else "config"
    if level == 3 and command is None and tests is not None:
        command, source = shlex.join(tests), "detected"
    builtin = _BUILTIN[level]
    if (level == 2 and command is not None) or (level == 4 and not prp.files):
        builtin = ""  # a configured L2 command replaces py_compile; no declared files, no drift
    return PlannedCheck(level=level, command=command or None, builtin=builtin, source=source)


_BUILTIN = {
    1: "commits beyond the base, checkpoint grammar, declared files exist, no conflict markers",
    2: "py_compile of the changed Python files",
    3: "",
    4: "drift (changed files outside the declared ones)",
}
