"""The integration worktree: where merged trees and stage reviews are checked."""

from __future__ import annotations

from pathlib import Path

from ce import fsio, git
from ce.core.errors import CeFailure
from ce.run import worktree_env
from ce.run.load import BatchContext


def prepare_integration(ctx: BatchContext, path: Path) -> None:
    """A new integration worktree gets what a PRP's worktree gets: `.worktreeinclude` files and
    `setup`, so the merged-tree checks run in the same environment; what they made is recorded
    as that environment (the checks see it and what is committed, nothing else)."""
    log = ctx.state.root / "logs" / "integration.log"
    copied, _ = worktree_env.copy_included(ctx.root, path)
    if copied:
        fsio.append_log(log, f"[ce] .worktreeinclude: copied {', '.join(copied[:20])}\n")
    if ctx.config.worktrees.setup.strip():
        _setup(ctx, path, log)
    worktree_env.record_environment(path)


def _setup(ctx: BatchContext, path: Path, log: Path) -> None:
    error = worktree_env.run_setup(
        ctx.config.worktrees.setup,
        path,
        env=git.git_env(c_locale=False) | worktree_env.lane_variables(ctx.worktree_settings),
        log_path=log,
        timeout_minutes=ctx.config.run.timeout_minutes,
        grace=ctx.config.monitor.grace_seconds,
        on_group=lambda _pgid: None,
    )
    if error is not None:
        ctx.repo.remove_worktree(path, force=True)  # prepared again next time
        raise CeFailure(f"the integration worktree's {error}")
