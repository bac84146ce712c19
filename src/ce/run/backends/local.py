"""The `local` backend: each launch a process group in the PRP's worktree on this machine."""

from __future__ import annotations

from collections.abc import Mapping

from ce import git, proc
from ce.agents.base import ExecutorJob
from ce.run import prp_worktree, worktree_env
from ce.run.backends.base import Place, Site
from ce.run.record import LevelResult
from ce.run.validate import LEVELS, ValidationTarget, run_levels
from ce.secrets import log_filter


class LocalBackend:
    name = "local"

    def place(self, site: Site) -> Place:
        return LocalPlace(site)

    def close(self) -> None:
        pass


class LocalPlace:
    def __init__(self, site: Site) -> None:
        self.site = site

    def prepare(self, *, fresh: bool) -> str | None:
        site = self.site
        return worktree_env.prepare(
            site.ctx.worktree_settings,
            site.prp,
            site.worktree,
            log_path=site.log_path,
            on_group=site.on_group,
            fresh=fresh,
        )

    def command(self, job: ExecutorJob, argv: list[str] | None) -> list[str]:
        return argv or self.site.ctx.executor.command(job)

    def spawn(self, job: ExecutorJob, argv: list[str], env: Mapping[str, str]) -> proc.Supervised:
        site = self.site
        child = proc.spawn_group(
            argv,
            cwd=site.worktree,
            env=env,
            log_path=site.log_path,
            output_filter=log_filter(env),
        )
        site.on_group(child.pgid)
        return child

    def launched(self, child: proc.Supervised) -> dict[str, object]:
        return {"pid": child.pid, "pgid": child.pgid}

    def lost(self) -> str | None:
        return None

    def recover(self) -> bool:
        return False

    def save_leftovers(self, repo: git.Repo) -> bool:
        return prp_worktree.save_leftovers(repo, self.site.prp.id, self.site.emit)

    def validate(
        self, target: ValidationTarget, environ: Mapping[str, str], *, bare: bool
    ) -> dict[str, LevelResult]:
        scratch = self.site.ctx.state.scratch(self.site.prp.id)
        config = self.site.ctx.config.validation
        with worktree_env.committed_only(self.site.worktree, scratch, bare=bare):
            return run_levels(target, config, LEVELS, environ)

    def interrupt(self, grace: float) -> None:
        pass  # its process group is stopped by its pgid, with every other local one

    def close(self) -> None:
        pass
