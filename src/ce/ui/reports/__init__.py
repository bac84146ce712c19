"""What a person reads the next morning: the run as JSON, as JUnit XML and as one HTML page.

Everything comes from the typed summary, plus the board's record of events for the timeline's
times; nothing here runs git or reads the engine's state. Every string that reached us from a
PRP, an agent or a log is user input: it is escaped for HTML and XML and stripped of terminal
escapes and invalid characters (`markup`). JUnit is `junit`, the page `page`, its timeline `svg`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ce.core.outcome import ReportPaths, Summary
from ce.fsio import write_atomic
from ce.secrets import mask_data
from ce.ui.board import BoardState
from ce.ui.reports import history
from ce.ui.reports.junit import junit_xml
from ce.ui.reports.markup import LOG_TAIL_LINES, clean_text, tail_lines
from ce.ui.reports.page import report_html
from ce.ui.timeline import timeline

__all__ = [
    "LOG_TAIL_LINES",
    "REPORT_VERSION",
    "PrpExtras",
    "ReportPaths",
    "clean_text",
    "junit_xml",
    "report_data",
    "report_html",
    "tail_lines",
    "write_reports",
]

REPORT_VERSION = 1
_LOG_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class PrpExtras:
    """What the caller knows about a PRP beyond the summary (it runs git; we only render)."""

    diffstat: str | None = None
    log_tail: str | None = None  # the text itself, or else:
    log_path: Path | None = None  # read the last LOG_TAIL_LINES lines of this file


def write_reports(
    state_dir: Path,
    batch_id: str,
    summary: Summary,
    board: BoardState,
    extras: Mapping[str, PrpExtras] | None = None,
    *,
    started_at: float | None = None,
) -> ReportPaths:
    """Write the three reports under `state_dir` (each atomically) and return their paths:
    the latest under the batch's names and, given the run's start, the run's own (`history`)."""
    paths = ReportPaths.of(state_dir, batch_id)
    summary = mask_data(summary)  # the logs are masked already; the summary's errors may not be
    tails = mask_data({prp_id: _log_tail(extra) for prp_id, extra in (extras or {}).items()})
    diffstats = {prp_id: extra.diffstat for prp_id, extra in (extras or {}).items()}
    texts = (
        json.dumps(report_data(summary, board), indent=2) + "\n",
        junit_xml(summary, tails),
        report_html(summary, board, diffstats=diffstats, tails=tails),
    )
    runs = [] if started_at is None else [history.run_paths(state_dir, batch_id, started_at)]
    for where in (*runs, paths):
        for path, text in zip((where.json, where.junit, where.html), texts, strict=True):
            write_atomic(path, text)
    if runs:
        history.prune(state_dir, batch_id)
    return paths


def report_data(summary: Summary, board: BoardState) -> dict[str, Any]:
    """The summary as `--json` prints it, plus the timeline of events the board recorded."""
    return {**summary.to_json(), "report_version": REPORT_VERSION, "timeline": timeline(board)}


def _log_tail(extra: PrpExtras) -> str | None:
    if extra.log_tail is not None:
        return tail_lines(extra.log_tail)
    if extra.log_path is None:
        return None
    try:
        with extra.log_path.open("rb") as log:
            log.seek(max(log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES, 0))
            return tail_lines(log.read().decode("utf-8", "replace"))
    except OSError:
        return None
