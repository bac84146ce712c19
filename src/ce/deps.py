"""`python -m ce.deps FILE.json`: the same analyzer as `ce analyze-deps FILE.json`.

The seed's orchestrator calls this module directly, so it loads only the analyzer, not the CLI;
its output and exit codes are those of `ce analyze-deps` (0 planned, 2 bad input or a cycle).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ce.core.errors import CeError
from ce.plan.deps import analyze_file, cycle_message, render

_EXIT_USAGE = 2  # as `ce analyze-deps`: the user's input cannot be planned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ce.deps", description="Plan the items of FILE.json (see ce analyze-deps)."
    )
    parser.add_argument("file", type=Path, metavar="FILE.json")
    path: Path = parser.parse_args(argv).file
    try:
        result = analyze_file(path)
    except CeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    print(render(result))
    if result["has_cycles"]:
        print(f"error: {cycle_message(str(path), result['cycle'])}", file=sys.stderr)
        return _EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
