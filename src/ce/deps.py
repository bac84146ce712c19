"""`python -m ce.deps FILE.json`: the same analyzer as `ce analyze-deps FILE.json`."""

from __future__ import annotations

import sys

from ce.cli import main

if __name__ == "__main__":
    main(["analyze-deps", *sys.argv[1:]])
