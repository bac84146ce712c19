"""The errors `ce` raises on purpose; anything else reaching the top level is a bug."""

from __future__ import annotations


class CeError(Exception):
    """The user's mistake or environment: the message says what, where and how to fix it.

    Raised before anything is changed, so the top-level handler exits 2.
    """

    exit_code = 2


class CeFailure(Exception):
    """Work that was attempted and failed (a git command, a merge): exit 1."""

    exit_code = 1
