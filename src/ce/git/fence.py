"""An agent can move only its own branch (issue 15 item 4): the invariants detect a moved
target afterwards; this refuses the move itself, for every executor.

Each PRP's worktree gets its own hooks directory in its git admin dir (removed with the
worktree), named as `core.hooksPath` in two places, both invisible to the user's checkout:

- the worktree's own config (`git config --worktree`; turns on `extensions.worktreeConfig`
  once, as sparse worktrees do), which covers git run there by anything, an environment
  scrubbed of `GIT_*` and `git push .` (its receive-pack) included;
- `GIT_CONFIG_PARAMETERS` in the executor's environment (what `git -c` sets), which also covers
  the agent's `git -C <your checkout> commit`: the sandboxes must leave the shared git dir
  writable for the agent's own commits, so only a hook can tell its branch from yours.

Its `reference-transaction` hook refuses, before anything is written, any update of a branch
(`refs/heads/*`) but the PRP's own, and of any tag (`refs/tags/*`: tags are shared by every
checkout of the repository and an agent has no business publishing one); each refused ref is
written to a file ce reads after the launch, and the PRP fails with it. Remote-tracking refs
(a `git fetch`), `HEAD` and ce's `refs/ce/*` are left alone. Every other hook (and the user's
own `reference-transaction`, after the check) runs the user's hook, if any: the user's hooks
still run in the worktree. In another repository (an agent's test fixtures) it runs that
repository's own hooks and refuses nothing. ce's own git calls pass `core.hooksPath=/dev/null`
or run outside the worktree, and never carry the variable: the lane is unaffected.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

from ce.git.repo import Repo

HOOKS_DIR = "ce-hooks"
REFUSED = "ce-refused"  # beside the hooks dir: the refs the hook refused, one a line
# Every hook git runs (githooks(5)); each name is the same dispatcher.
HOOK_NAMES = (
    "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
    "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout",
    "post-merge", "pre-push", "pre-receive", "update", "proc-receive", "post-receive",
    "post-update", "reference-transaction", "push-to-checkout", "pre-auto-gc", "post-rewrite",
    "sendemail-validate", "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist",
    "p4-post-changelist", "p4-pre-submit", "post-index-change",
)  # fmt: skip

_DISPATCHER = """\
#!/bin/sh
# Written by ce: only {own} may be updated from this PRP's worktree (see ce/git/fence.py).
name=${{0##*/}}
common={common}
own={own}
hooks={user_hooks}
case "${{GIT_DIR:-}}" in
"$common" | "$common"/worktrees/*) gitdir=$GIT_DIR ;;  # as git gives it here: no subshell
*) gitdir=$(cd "${{GIT_DIR:-.git}}" 2>/dev/null && pwd -P) ;;
esac
case "$gitdir" in
"$common" | "$common"/worktrees/*) ;;
*)  # another repository: its own hooks, as if ce were not there; nothing refused
    own=
    unset GIT_CONFIG_PARAMETERS
    hooks=$(git config --get core.hooksPath) || hooks="$(git rev-parse --git-common-dir)/hooks"
    ;;
esac
if [ "$name" = reference-transaction ] && [ -n "$own" ] && [ "$1" = prepared ]; then
    # Read with the shell's own `read`: no process but git's per phase of a ref update.
    input= refused=
    while read -r old new ref; do
        input="$input$old $new $ref
"
        case "$ref" in "$own") ;; refs/heads/* | refs/tags/*) refused="$refused $ref" ;; esac
    done
    if [ -n "$refused" ]; then
        printf '%s\\n' $refused >>{log}
        echo "ce: refused to update${{refused}}: this agent may update only $own" >&2
        exit 1
    fi
    [ -x "$hooks/$name" ] || exit 0
    printf '%s' "$input" | "$hooks/$name" "$@"
    exit
fi
case "$hooks" in {own_hooks}) exit 0 ;; esac  # never itself (a git that did not set GIT_DIR)
[ -x "$hooks/$name" ] || exit 0
exec "$hooks/$name" "$@"
"""


def install(checkout: Repo, worktree: Path, branch: str) -> None:
    """Fence the PRP worktree at `worktree` (on `branch`) of the user's `checkout`.

    No git process: the worktree's config is written here (once per run, the user's own hooks
    path is read, and whether per-worktree config is on, turned on if not).
    """
    admin = admin_dir(worktree)
    hooks = admin / HOOKS_DIR
    hooks.mkdir(exist_ok=True)
    dispatcher = hooks / "ce-dispatch"
    dispatcher.write_text(
        _DISPATCHER.format(
            common=shlex.quote(str(checkout.common_dir().resolve())),
            own=shlex.quote(f"refs/heads/{branch}"),
            user_hooks=shlex.quote(str(checkout.hooks_dir())),
            log=shlex.quote(str(admin / REFUSED)),
            own_hooks=shlex.quote(str(hooks)),
        ),
        encoding="utf-8",
    )
    dispatcher.chmod(0o755)
    directory = os.open(hooks, os.O_RDONLY | os.O_DIRECTORY)
    try:  # a link a name, made relative to the directory: no path built and looked up each
        for name in HOOK_NAMES:
            with contextlib.suppress(FileExistsError):  # fenced before (a resumed PRP)
                os.symlink(dispatcher.name, name, dir_fd=directory)
    finally:
        os.close(directory)
    _set_worktree_config(checkout, worktree, "core.hooksPath", str(hooks))


def agent_env(worktree: Path) -> dict[str, str]:
    """What an executor's environment carries for the fence of `worktree` (none if unfenced)."""
    hooks = admin_dir(worktree) / HOOKS_DIR
    if not hooks.is_dir():
        return {}
    return {"GIT_CONFIG_PARAMETERS": f"{_sq('core.hooksPath')}={_sq(str(hooks))}"}


def _sq(text: str) -> str:
    """Quoted as git quotes `-c` pairs into `GIT_CONFIG_PARAMETERS` (always in quotes)."""
    return "'" + text.replace("'", "'\\''") + "'"


def refused(worktree: Path) -> list[str]:
    """The refs the fence refused to move since the worktree was fenced, in order, once each."""
    try:
        text = (admin_dir(worktree) / REFUSED).read_text(encoding="utf-8")
    except OSError:
        return []
    return list(dict.fromkeys(line for line in text.splitlines() if line))


def admin_dir(worktree: Path) -> Path:
    """The worktree's own directory under `.git/worktrees/` (its `.git` file points there)."""
    dot_git = worktree / ".git"
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            return (worktree / text.removeprefix("gitdir:").strip()).resolve()
    return dot_git


def _set_worktree_config(checkout: Repo, worktree: Path, key: str, value: str) -> None:
    """`git config --worktree key value`, written by hand: the worktree's `config.worktree` is
    new with it (or holds only what its sparse checkout put there), and a process per PRP saved
    is what this is for. Per-worktree config is turned on first, once per repository and run."""
    _worktree_config_on(checkout)
    section, _, name = key.partition(".")
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    entry = f'[{section}]\n\t{name} = "{quoted}"\n'
    path = admin_dir(worktree) / "config.worktree"
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    if entry not in existing:
        separator = "" if not existing or existing.endswith("\n") else "\n"
        with path.open("a", encoding="utf-8") as config:
            config.write(separator + entry)


_WORKTREE_CONFIG_ON: set[Path] = set()  # the repositories (common dirs) known to have it on


def _worktree_config_on(checkout: Repo) -> None:
    common = checkout.common_dir().resolve()
    if common in _WORKTREE_CONFIG_ON:
        return
    on = checkout.git("config", "--bool", "--get", "extensions.worktreeConfig", check=False)
    if on.stdout.strip() != "true":
        # Turned on as `git sparse-checkout` does, under the worktree lock: parallel writers of
        # the shared config race on its lock file.
        with checkout.worktree_lock():
            checkout.git("config", "extensions.worktreeConfig", "true")
    _WORKTREE_CONFIG_ON.add(common)
