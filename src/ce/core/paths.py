"""Declared paths and the one glob matcher, with gitignore-like semantics.

A PRP declares its files in three forms, all repo-relative POSIX paths:

- a literal, `src/ce/git.py` or `src/ce`: that file, or everything under that directory (text
  alone cannot tell a file from a directory, so a literal covers both);
- a directory, `src/ce/`: everything under it, the same as `src/ce/**`;
- a glob: `*` and `?` match within one directory, `[...]` is a character class (`[!...]`
  negated), `**` crosses directories (`src/**/x.py` includes `src/x.py`).

Unlike gitignore, a pattern without a slash is anchored at the root: `*.md` is the root's
Markdown files, not every one in the tree. The planner's overlap check, the L4 drift check and
the sparse cones all ask this module, so they agree on what a declaration covers.
"""

from __future__ import annotations

import functools
import re
from posixpath import normpath

_WILDCARD = re.compile(r"[*?\[]")
_NEEDS_NORMALIZING = re.compile(r"(^|/)\.{1,2}(/|$)|//|\\|^\s|\s$")


def normalize_path(path: str) -> str:
    """Repo-relative POSIX form: `./`, `//` and `/.` removed; a directory keeps its `/`."""
    if not _may_need_normalizing(path) or not _NEEDS_NORMALIZING.search(path):
        return path  # the common case, checked without allocating
    text = path.strip().replace("\\", "/")
    if not text:
        return ""
    normal = normpath(text)
    if normal == ".":
        return "**"
    return f"{normal}/" if text.endswith("/") else normal


def _may_need_normalizing(path: str) -> bool:
    """What `_NEEDS_NORMALIZING` can match must contain one of these: a tenth of its cost."""
    return (
        "/." in path
        or path.startswith(".")
        or "//" in path
        or "\\" in path
        or path[:1].isspace()
        or path[-1:].isspace()
    )


def is_glob(pattern: str) -> bool:
    return _WILDCARD.search(pattern) is not None


def is_literal(pattern: str) -> bool:
    """A file or a directory named exactly: neither a glob nor a `dir/`."""
    return not pattern.endswith("/") and not is_glob(pattern)


def as_glob(pattern: str) -> str:
    """`dir/` is `dir/**`; anything else is itself."""
    return f"{pattern}**" if pattern.endswith("/") else pattern


def literal_prefix(pattern: str) -> str:
    """The text before the first wildcard: every path a glob matches starts with it."""
    glob = as_glob(pattern)
    first = _WILDCARD.search(glob)
    return glob if first is None else glob[: first.start()]


def covers(pattern: str, path: str) -> bool:
    """Whether a declared path, directory or glob covers the file `path`."""
    pattern, path = normalize_path(pattern), normalize_path(path)
    if not pattern or not path:
        return False
    if is_literal(pattern):
        return path == pattern or path.startswith(f"{pattern}/")
    return glob_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a glob or `dir/`, to be used with `fullmatch`."""
    glob = as_glob(pattern)
    out: list[str] = []
    i = 0
    while i < len(glob):
        token, i = _token(glob, i)
        out.append(token)
    return re.compile("".join(out), re.DOTALL)


def _token(glob: str, i: int) -> tuple[str, int]:
    """The regular expression for the glob's text at `i`, and where the next one starts."""
    if glob.startswith("**/", i):
        return "(?:.*/)?", i + 3  # `a/**/b` includes `a/b`
    if glob.startswith("**", i):
        return ".*", i + 2
    if glob[i] == "*":
        return "[^/]*", i + 1
    if glob[i] == "?":
        return "[^/]", i + 1
    if glob[i] == "[" and (end := glob.find("]", i + 2)) > 0:
        body = glob[i + 1 : end]
        return "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
    return re.escape(glob[i]), i + 1


def cone(pattern: str) -> str | None:
    """The directory a cone-mode sparse checkout needs so that a glob or `dir/` sees every
    path it covers: its literal leading directories, "" when the root's own files are enough
    (`*.md`: the root's files are always checked out), None when only the whole tree is
    (`**/*.py`, `*/x.py`). A literal's cone depends on whether it is a directory: not here."""
    glob = as_glob(pattern)
    base, _, _ = literal_prefix(glob).rpartition("/")
    if base or ("/" not in glob and "**" not in glob):
        return base
    return None
