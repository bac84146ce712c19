"""`ce batch-exe`, `ce execute-prp`: plan and run a batch."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ce.cli.hints import resume_command
from ce.cli.signals import stop_on_signals
from ce.core.jsontext import dumps_indented
from ce.core.outcome import ReportPaths, Summary
from ce.core.vocab import (
    BACKENDS,
    CONFLICT_POLICIES,
    EXECUTORS,
    MODEL_TIERS,
    SCHEDULES,
    model_choice,
)
from ce.run import backends
from ce.run.load import BatchContext, Overrides, RunOptions, load
from ce.run.notify import BatchFacts, Notifier, final_payload
from ce.secrets import mask_data
from ce.ui.board import BoardState
from ce.ui.live import Progress, progress_for


class _ModelName(click.ParamType[str, Any]):
    name = "model"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(MODEL_TIERS)}|NAME]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return model_choice(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# Options about a batch as a whole: not offered by `execute-prp`, which runs one PRP.
_BATCH_ONLY = frozenset(
    {"--stage", "--max-parallel", "--continue-on-error", "--schedule", "--batch-budget-usd"}
)


def _run_options(func: Any, *, batch: bool = True) -> Any:
    options = [
        _opt(
            "--stage",
            type=click.IntRange(min=1),
            metavar="N",
            help="Run only plan stage N (stages before it must be done).",
        ),
        _opt("--resume", is_flag=True, help="Continue an interrupted or paused run."),
        _opt("--dry-run", is_flag=True, help="Show the plan; change nothing."),
        _opt("--json", "as_json", is_flag=True, help="Print JSON on stdout (progress on stderr)."),
        _opt("--executor", type=click.Choice(EXECUTORS), help="Who implements the PRPs."),
        _opt(
            "--model",
            type=_ModelName(),
            help="Model for every PRP: a tier or a model name passed to the executor as is "
            "(default: a tier chosen per PRP).",
        ),
        _opt(
            "--max-parallel",
            type=click.IntRange(min=0),
            metavar="N",
            help="PRPs at once (0 = unlimited; default 4).",
        ),
        _opt(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            metavar="MIN",
            help="Minutes per PRP, fractions allowed (default 60).",
        ),
        _opt(
            "--continue-on-error",
            is_flag=True,
            help="Skip a failed PRP's dependents, go on with the rest.",
        ),
        _opt("--no-auto-review", is_flag=True, help="No review after each stage."),
        _opt(
            "--schedule",
            type=click.Choice(SCHEDULES),
            help="Stage barriers or eager dispatch.",
        ),
        _opt(
            "--on-conflict",
            type=click.Choice(CONFLICT_POLICIES),
            help="On a merge conflict: pause the batch (default), let the PRP's agent merge and "
            "resolve (agent), or run the PRP again from the new target (rerun).",
        ),
        _opt(
            "--push/--no-push",
            default=None,
            help="Push the target to its upstream after each merge (default: config, off).",
        ),
        _opt(
            "--max-budget-usd",
            type=click.FloatRange(min=0, min_open=True),
            help="Dollars each PRP's agent may spend (passed to CLIs with a budget flag).",
        ),
        _opt(
            "--batch-budget-usd",
            type=click.FloatRange(min=0, min_open=True),
            help="Once the agents have spent this much, no new PRP starts.",
        ),
        _opt(
            "--backend",
            type=click.Choice(BACKENDS),
            help="Where the agents run: this machine (local, default) or a Ray cluster (ray).",
        ),
        _opt(
            "--ray-address",
            metavar="auto|HOST:PORT",
            help="The Ray cluster to run on with --backend ray (default: [backend] address, auto).",
        ),
        _opt("--quiet", is_flag=True, help="Print errors and the summary only."),
    ]
    for decls, settings in reversed(options):
        if batch or decls[0] not in _BATCH_ONLY:
            func = click.option(*decls, **settings)(func)
    return func


def _opt(*decls: str, **settings: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return decls, settings


def _retry_options(func: Any) -> Any:
    """Running PRPs again (issue 16 item 4): batch-exe's alone."""
    func = click.option(
        "--retry",
        "retry_stage",
        is_flag=True,
        help="With --stage N: run every unmerged PRP of that stage again from the target.",
    )(func)
    return click.option(
        "--retry-prp",
        "retry",
        multiple=True,
        metavar="ID",
        help="Run this PRP again from the target, its earlier attempt kept on a branch "
        "<branch>-attempt-N (repeatable; 43.2.1 or PRP-43.2.1). Continues the batch.",
    )(func)


@click.command("batch-exe", short_help="Run a batch of PRPs in parallel; merge them one by one.")
@click.argument("prps", nargs=-1)
@click.option("--batch", "batch", metavar="N", help="Run every PRP-N.*.md in the PRP directory.")
@_run_options
@_retry_options
def batch_exe(prps: tuple[str, ...], batch: str | None, **params: Any) -> int:
    """Execute a batch of PRPs in parallel and merge the results one by one.

    \b
    Examples:
      ce batch-exe --batch 43 --dry-run      # the plan, nothing changed
      ce batch-exe --batch 43                # run every stage
      ce batch-exe --batch 43 --resume       # continue after an interruption
      ce batch-exe --batch 43 --retry-prp 43.2.1   # run a failed PRP again
      ce batch-exe PRP-43.2.1 PRP-43.2.2     # just these
    """
    return execute(prps, batch, params)


@click.command("execute-prp", short_help="Run one PRP with the same engine.")
@click.argument("prp")
@functools.partial(_run_options, batch=False)
def execute_prp(prp: str, **params: Any) -> int:
    """Execute one PRP with the same engine (worktree, executor, validation, merge)."""
    return execute((prp,), None, params)


def execute(prps: tuple[str, ...], batch: str | None, params: dict[str, Any]) -> int:
    options = RunOptions(
        prps=prps,
        batch=batch,
        stage=params.get("stage"),
        resume=params["resume"],
        continue_on_error=bool(params.get("continue_on_error")),
        retry=params.get("retry", ()),
        retry_stage=params.get("retry_stage", False),
        overrides=Overrides(
            executor=params["executor"],
            model=params["model"],
            max_parallel=params.get("max_parallel"),
            timeout_minutes=params["timeout"],
            auto_review=False if params["no_auto_review"] else None,
            schedule=params.get("schedule"),
            conflict_policy=params["on_conflict"],
            push=params["push"],
            max_budget_usd=params["max_budget_usd"],
            batch_budget_usd=params.get("batch_budget_usd"),
            backend=params["backend"],
            ray_address=params["ray_address"],
        ),
    )
    if params["dry_run"]:
        return _dry_run(options, as_json=params["as_json"])
    context = load(options, Path.cwd())
    backends.preflight(context)  # `ray`: each node checks what the executor needs there
    return run_context(context, as_json=params["as_json"], quiet=params["quiet"])


def _dry_run(options: RunOptions, *, as_json: bool) -> int:
    from ce.cli.hints import next_step
    from ce.run.readiness import dry_run

    context, planned = dry_run(options, Path.cwd(), lambda exc: f"{exc}{next_step(exc.next_step)}")
    _print_warnings(context)
    if as_json:
        for problem in planned.problems:
            click.echo(f"warning: {problem}", err=True)
        click.echo(dumps_indented(planned.to_json()))
    else:
        from ce.ui.plan_view import render_plan  # rich's tables: not for --json

        render_plan(planned, Console())
    return planned.exit_code  # what a real run would exit with before changing anything


def _print_warnings(context: BatchContext) -> None:
    for warning in context.warnings:
        click.echo(f"warning: {warning}", err=True)


def _listener(*, quiet: bool, as_json: bool) -> Progress:
    """The live board on a terminal; plain lines on pipes, in CI, with --json or --quiet."""
    return progress_for(sys.stderr, quiet=quiet, plain=as_json)


def run_context(context: BatchContext, *, as_json: bool, quiet: bool) -> int:
    from ce.run.lock import batch_lock

    with batch_lock(context.repo.common_dir(), context.batch_id), stop_on_signals():
        try:
            return _run_locked(context, as_json=as_json, quiet=quiet)
        except KeyboardInterrupt:
            with contextlib.suppress(OSError, ValueError):  # the terminal may be gone (SIGHUP)
                _say_interrupted(context, as_json=as_json)
            return 130


def _say_interrupted(context: BatchContext, *, as_json: bool) -> None:
    click.echo(
        "\nInterrupted: agents stopped, their work and the batch state saved.\n"
        f"Continue with: {resume_command(context)}",
        err=True,
    )
    if as_json:  # stdout still holds one JSON object
        interrupted = {
            "batch_id": context.batch_id,
            "status": "INTERRUPTED",
            "exit_code": 130,
            "resume_command": resume_command(context),
        }
        click.echo(json.dumps(interrupted))


def _run_locked(context: BatchContext, *, as_json: bool, quiet: bool) -> int:
    from ce.cli.hints import describer
    from ce.run.engine import Engine
    from ce.run.summary import build_summary
    from ce.ui.summary import render_summary

    _print_warnings(context)
    progress = _listener(quiet=quiet, as_json=as_json)
    notifier = _notifier(context)
    engine = Engine(context, notifier.listening(progress), describe=describer(context))
    if not engine.prepare():
        if context.options.resume:
            engine.finish_resumed()
        click.echo(_nothing_to_do(context), err=True)
        if as_json:
            click.echo(
                json.dumps(
                    {"batch_id": context.batch_id, "status": "COMPLETED", "nothing_to_do": True}
                )
            )
        return 0
    with progress:
        outcome = engine.run()
    # Errors and validation output may quote an agent's output: secrets masked, as in the logs.
    summary = mask_data(build_summary(outcome, resume_command=resume_command(context)))
    summary = _write_reports(context, summary, progress.board.state, engine.recorder.started_at)
    summary = _notified(notifier, summary)
    if as_json:
        click.echo(dumps_indented(summary.to_json()))
    else:
        render_summary(summary, Console())
    return summary.exit_code


def _nothing_to_do(context: BatchContext) -> str:
    """A batch run again once complete says so, and how to run a PRP of it again."""
    options, order = context.options, context.plan.plan.sorted_order
    if options.batch is None or options.stage is not None or not set(order) <= context.done:
        return f"Batch {context.batch_id}: nothing to do, {_all_done(context)}."
    names = ", ".join(order[:8]) + (", …" if len(order) > 8 else "")
    return (
        f"Batch {context.batch_id} is already complete: {len(order)} "
        f"PRP{'' if len(order) == 1 else 's'} merged ({names}); nothing to do.\n"
        "To run a PRP of it again, set its `status:` back to `ready` in its file and commit, "
        f"then run `ce batch-exe --batch {options.batch}` (`--retry-prp ID` runs again a PRP "
        "that did not merge)."
    )


def _notifier(context: BatchContext) -> Notifier:
    facts = BatchFacts(
        batch_id=context.batch_id,
        resume_command=resume_command(context),
        report=str(ReportPaths.of(context.state.root, context.batch_id).html),
    )
    return Notifier(context.config.notify, facts, context.state.root / "logs" / "notify.log")


def _notified(notifier: Notifier, summary: Summary) -> Summary:
    """The end of the batch sent as `[notify]` asks; what could not be sent is a warning."""
    data = final_payload(summary, notifier.facts)
    if data is not None:
        notifier.send(data)
    failures = notifier.wait()
    if not failures:
        return summary
    guidance = summary.guidance
    return replace(summary, guidance=replace(guidance, warnings=(*guidance.warnings, *failures)))


def _all_done(context: BatchContext) -> str:
    """What is done, in the terms of the request: a stage, the PRPs named, or the batch."""
    if context.options.stage is not None:
        return f"every PRP of stage {context.options.stage} is done"
    if context.options.prps and context.options.batch is None:
        names = ", ".join(context.plan.plan.sorted_order)
        return f"{names} {'is' if len(context.plan.plan.sorted_order) == 1 else 'are'} done"
    return "every PRP is done"


def _write_reports(
    context: BatchContext, summary: Summary, board: BoardState, started_at: float
) -> Summary:
    """Reports under .ce/tmp/ after every run, paused or not, each run's kept under its start
    time; the summary points at the latest."""
    from ce.ui.reports import PrpExtras, write_reports

    paths = ReportPaths.of(context.state.root, context.batch_id)
    steps = (*summary.guidance.next_steps, f"Read the report: {paths.html}")
    summary = replace(summary, reports=paths, guidance=replace(summary.guidance, next_steps=steps))
    extras = {prp.id: PrpExtras(log_path=context.state.log(prp.id)) for prp in summary.prps}
    try:
        write_reports(
            context.state.root, context.batch_id, summary, board, extras, started_at=started_at
        )
    except OSError as exc:
        click.echo(f"warning: could not write the reports: {exc}", err=True)
    return summary


COMMANDS: list[click.Command] = [batch_exe, execute_prp]
