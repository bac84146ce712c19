"""Every "run `ce …`" a user reads: the words for the engine's typed reasons, resume commands."""

from __future__ import annotations

import errno
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ce.core.errors import NextStep, Step
from ce.run.reasons import (
    BudgetSpent,
    Conflicted,
    MergeBlocked,
    MergesLost,
    PushRejected,
    Reason,
    ReviewFailed,
)

if TYPE_CHECKING:
    from ce.run.load import BatchContext


def batch_args(context: BatchContext) -> str:
    if context.options.batch:
        return f"--batch {context.options.batch}"
    return " ".join(context.options.prps)


def resume_command(context: BatchContext) -> str:
    return f"ce batch-exe {batch_args(context)} --resume"


def ce_invocation(cwd: Path) -> str:
    """How to call this `ce` from `cwd` in the user's shell: `ce` when it is installed as a tool
    (uv tool, pipx, pip), else through uv and the project whose `.venv` runs it, which
    `uv run ce` alone finds only from inside that project."""
    environment = Path(sys.prefix)
    project = environment.parent
    if environment.name != ".venv" or not (project / "pyproject.toml").is_file():
        return "ce"
    if cwd.resolve().is_relative_to(project.resolve()):
        return "uv run ce"
    return f"uv run --project {shlex.quote(str(project))} ce"


ENVIRONMENT_ERRORS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE}
)


def is_environment_error(exc: OSError) -> bool:
    return exc.errno in ENVIRONMENT_ERRORS or (exc.errno == errno.ENOENT and _cwd_gone())


def _cwd_gone() -> bool:
    try:
        Path.cwd()
    except FileNotFoundError:
        return True
    return False


def environment_error(exc: OSError) -> str:
    """A full disk, a read-only directory, no file descriptors left, the current directory
    gone: what and what to do."""
    if exc.errno == errno.ENOENT and _cwd_gone():
        # The shell's $PWD still names the directory os.getcwd() can no longer find.
        named = f" {os.environ['PWD']}" if os.environ.get("PWD") else ""
        return (
            f"the current directory{named} does not exist (it was removed or moved after the "
            "shell entered it): cd into the repository again, then run the command again."
        )
    where = f" ({exc.filename})" if exc.filename else ""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        fix = "raise the limit (`ulimit -n 4096`) or run fewer PRPs at once (--max-parallel)"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space"
    else:
        fix = "make it writable (or run ce from a checkout you can write to)"
    return (
        f"{what}{where}: {fix}, then run the command again (a batch that had started "
        "continues with --resume)."
    )


def next_step(step: NextStep | None) -> str:
    """The words of the next step an error carries, to print after its message."""
    if step is None:
        return ""
    if step.step is Step.WAIT_OR_RESUME:
        return " Wait for it to finish, or stop it (Ctrl-C) and continue later with --resume."
    if step.batch_id is None:
        return "\nContinue it with --resume, or remove it with `ce cleanup`."
    resume = f"`ce batch-exe --batch {step.batch_id} --resume`"
    cleanup = f"`ce cleanup --batch {step.batch_id}`"
    if step.step is Step.RESUME_OR_CLEANUP:
        return f" Continue it with {resume}, or remove it with {cleanup}."
    if step.step is Step.CHECKPOINT_LOST:
        return (
            f"\n{resume} rebuilds it from the journal and git (branches, checkpoint commits, "
            f"merges on the target) and continues the batch. To start over instead, `ce cleanup` "
            f"(--batch {step.batch_id}) removes what it left; work not merged is kept unless "
            "--force."
        )
    return (
        f"\nContinue it with {resume}, or remove it with {cleanup} "
        "(add --force to drop unmerged commits)."
    )


def describer(context: BatchContext) -> Callable[[Reason], str]:
    """The engine's reasons in words, for this batch."""
    return lambda reason: describe(
        reason, target=context.target, root=context.root, args=batch_args(context)
    )


def describe(reason: Reason, *, target: str, root: Path, args: str) -> str:
    resume = f"ce batch-exe {args} --resume"
    if isinstance(reason, Conflicted):
        return (
            f"{reason.prp} conflicts with {target} in: {reason.files}.\n"
            f"Resolve it in its worktree, then resume:\n"
            f"  cd {reason.worktree}\n"
            f"  git merge {target}      # fix the conflicts, then `git add` and `git commit`\n"
            f"  cd {root} && {resume}"
        )
    if isinstance(reason, MergeBlocked):
        return reason.message
    if isinstance(reason, PushRejected):
        return (
            f"Pushing {target} to {reason.remote}/{reason.branch} was rejected: {reason.detail}\n"
            f"Merge {reason.remote}/{reason.branch} into {target} (`git pull --no-rebase`; do not "
            f"rebase merged work), then run `{resume}`."
        )
    if isinstance(reason, ReviewFailed):
        findings = "\n".join(f"  - {f}" for f in reason.findings)
        return (
            f"The review of stage {reason.stage} FAILED:\n{findings}\n"
            f"Fix it on {target} (commit the fix), then run `{resume}`; the review runs again "
            "first."
        )
    if isinstance(reason, MergesLost):
        return (
            f"The merges of {', '.join(reason.prps)} are no longer on {target}: something moved "
            f"{target} back (a reset or a rebase) while the batch ran. Look at "
            f"`git reflog {target}`; to merge them again, run `{resume}` (they are merged anew "
            "from their branches)."
        )
    assert isinstance(reason, BudgetSpent)
    return (
        f"The batch budget of ${reason.budget_usd:.2f} is spent (${reason.spent_usd:.2f} "
        "reported by the agents), so no new PRP was started. To go on, raise it: "
        f"`{resume} --batch-budget-usd N` (or set batch_budget_usd in .ce/config.toml)."
    )
