"""What a person reads the next morning: the run as JSON, as JUnit XML and as one HTML page.

Everything comes from the summary data and the board's record of events; nothing here runs git
or reads the engine's state. Every string that reached us from a PRP, an agent or a log is user
input: it is escaped for HTML and XML and stripped of terminal escapes and invalid characters.
The HTML page is self-contained (inline CSS and SVG, no scripts, nothing fetched).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ce.core.durations import format_duration
from ce.fsio import write_atomic
from ce.secrets import mask_data
from ce.ui.board import (
    BoardState,
    PrpRow,
    Segment,
    SegmentKind,
    segments,
    strip_escapes,
    timeline,
)
from ce.ui.summary import total_cost

REPORT_VERSION = 1
LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 64 * 1024
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, kw_only=True)
class PrpExtras:
    """What the caller knows about a PRP beyond the summary (it runs git; we only render)."""

    diffstat: str | None = None
    log_tail: str | None = None  # the text itself, or else:
    log_path: Path | None = None  # read the last LOG_TAIL_LINES lines of this file


@dataclass(frozen=True, kw_only=True)
class ReportPaths:
    json: Path
    junit: Path
    html: Path

    @classmethod
    def of(cls, state_dir: Path, batch_id: str) -> ReportPaths:
        return cls(
            json=state_dir / f"batch-{batch_id}-report.json",
            junit=state_dir / f"batch-{batch_id}-junit.xml",
            html=state_dir / f"batch-{batch_id}-report.html",
        )

    def to_json(self) -> dict[str, str]:
        return {"json": str(self.json), "junit": str(self.junit), "html": str(self.html)}


def write_reports(
    state_dir: Path,
    batch_id: str,
    summary: Mapping[str, Any],
    board: BoardState,
    extras: Mapping[str, PrpExtras] | None = None,
) -> ReportPaths:
    """Write the three reports under `state_dir` (each atomically) and return their paths."""
    paths = ReportPaths.of(state_dir, batch_id)
    summary = mask_data(summary)  # the logs are masked already; the summary's errors may not be
    tails = mask_data({prp_id: _log_tail(extra) for prp_id, extra in (extras or {}).items()})
    diffstats = {prp_id: extra.diffstat for prp_id, extra in (extras or {}).items()}
    write_atomic(paths.json, json.dumps(report_data(summary, board), indent=2) + "\n")
    write_atomic(paths.junit, junit_xml(summary, tails))
    write_atomic(paths.html, report_html(summary, board, diffstats=diffstats, tails=tails))
    return paths


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


def tail_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(clean_text(text).splitlines()[-lines:])


def clean_text(text: str) -> str:
    """Log and agent text made safe for XML and HTML: no terminal escapes, no control bytes."""
    return _NOT_XML.sub("", strip_escapes(text))


# -- JSON -------------------------------------------------------------------------------------


def report_data(summary: Mapping[str, Any], board: BoardState) -> dict[str, Any]:
    """The summary as it is, plus the timeline of events the board recorded."""
    return {**summary, "report_version": REPORT_VERSION, "timeline": timeline(board)}


# -- JUnit ------------------------------------------------------------------------------------


def junit_xml(summary: Mapping[str, Any], tails: Mapping[str, str | None] | None = None) -> str:
    """One testcase per PRP: merged passes, a failure carries its reason, the rest are skipped."""
    batch_id = str(summary.get("batch_id", ""))
    prps: Mapping[str, Mapping[str, Any]] = summary.get("prps", {})
    suite = ET.Element("testsuite", name=_x(f"ce batch {batch_id}"))
    for prp_id, prp in prps.items():
        suite.append(_testcase(batch_id, prp_id, prp, (tails or {}).get(prp_id)))
    counts = {
        "tests": len(prps),
        "failures": sum(1 for case in suite if case.find("failure") is not None),
        "errors": 0,
        "skipped": sum(1 for case in suite if case.find("skipped") is not None),
    }
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{float(summary.get('elapsed_seconds') or 0):.3f}")
    root = ET.Element("testsuites", name=_x(f"ce batch {batch_id}"))
    root.attrib.update({k: suite.attrib[k] for k in ("tests", "failures", "errors", "time")})
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_FAILED_STATES = frozenset({"failed", "partial", "conflict"})


def _testcase(batch_id: str, prp_id: str, prp: Mapping[str, Any], tail: str | None) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=_x(f"ce.batch-{batch_id}.stage-{prp.get('stage', 0)}"),
        name=_x(f"{prp_id} {prp.get('title', '')}".strip()),
        time=f"{float(prp.get('duration_seconds') or 0):.3f}",
    )
    state = str(prp.get("state", ""))
    reason = _x(str(prp.get("error") or ""))
    if state in _FAILED_STATES:
        failure = ET.SubElement(case, "failure", type=state, message=reason or state)
        failure.text = "\n".join([reason, *_validation_failures(prp)]).strip() or state
    elif state == "skipped":
        ET.SubElement(case, "skipped", message=reason or "skipped")
    elif state != "merged":
        ET.SubElement(case, "skipped", message=f"not finished: {state} when the batch stopped")
    if tail and state != "merged":
        ET.SubElement(case, "system-out").text = _x(tail)
    return case


def _validation_failures(prp: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, result in sorted(prp.get("validation_results", {}).items()):
        if not result.get("passed") and not result.get("skipped"):
            errors = "; ".join(str(e) for e in result.get("errors", []))
            lines.append(_x(f"{level_name(key)} failed: {errors}".rstrip(": ")))
    return lines


def level_name(key: str) -> str:
    return key.replace("integration_level_", "merged L").replace("level_", "L")


def _x(text: str) -> str:
    return clean_text(text)


# -- HTML -------------------------------------------------------------------------------------

OUTCOME_COLOUR = {
    "merged": "#2f9e44",
    "partial": "#e8a317",
    "conflict": "#e8590c",
    "failed": "#e03131",
    "skipped": "#adb5bd",
}
_UNFINISHED_COLOUR = "#4c6ef5"
_KIND_OPACITY = {
    SegmentKind.PREPARE: 0.35,
    SegmentKind.PHASE: 1.0,
    SegmentKind.RUN: 0.6,
    SegmentKind.VALIDATE: 0.5,
    SegmentKind.WAIT: 0.22,
    SegmentKind.MERGE: 0.9,
}


def _e(value: object) -> str:
    return html.escape(clean_text(str(value)), quote=True)


def colour(state: str) -> str:
    return OUTCOME_COLOUR.get(state, _UNFINISHED_COLOUR)


def report_html(
    summary: Mapping[str, Any],
    board: BoardState,
    *,
    diffstats: Mapping[str, str | None] | None = None,
    tails: Mapping[str, str | None] | None = None,
) -> str:
    batch_id = str(summary.get("batch_id", board.batch_id))
    status = str(summary.get("status", board.status or ""))
    bars = _bars(summary, board)
    body = [
        _html_header(summary, batch_id, status),
        _html_next_steps(summary),
        "<h2>Timeline</h2>",
        _svg_timeline(bars, board),
        _html_legend(),
        *(
            _html_prp(prp_id, prp, (diffstats or {}).get(prp_id), (tails or {}).get(prp_id))
            for prp_id, prp in summary.get("prps", {}).items()
        ),
        _html_notices(board),
    ]
    return _PAGE.format(
        title=_e(f"ce batch {batch_id}: {status}"), css=_CSS, body="\n".join(b for b in body if b)
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #212529; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0 0 6px; } h4 { font-size: 13px; margin: 10px 0 4px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
          font-size: 13px; vertical-align: middle; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0; }
.card { border: 1px solid #dee2e6; border-radius: 6px; padding: 6px 12px; min-width: 84px; }
.card b { display: block; font-size: 18px; } .card span { color: #6c757d; font-size: 12px; }
pre { background: #f8f9fa; border: 1px solid #e9ecef; border-radius: 4px; padding: 8px;
      overflow-x: auto; white-space: pre-wrap; word-break: break-word; font-size: 12px; }
.pause { border-left: 4px solid #e8590c; background: #fff4e6; padding: 4px 12px; }
svg.timeline { width: 100%; height: auto; border: 1px solid #e9ecef; border-radius: 6px; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #343a40; }
svg .seg-label { fill: #fff; font-size: 10px; } svg .axis { fill: #868e96; font-size: 11px; }
svg .stage { fill: #495057; font-weight: 600; font-size: 11px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 6px 0 0; color: #495057;
          font-size: 12px; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
      vertical-align: -2px; margin-right: 4px; }
section.prp { border: 1px solid #dee2e6; border-left-width: 5px; border-radius: 6px;
              padding: 10px 14px; margin: 14px 0; }
table { border-collapse: collapse; margin: 4px 0 8px; } td, th { text-align: left;
        padding: 2px 12px 2px 0; vertical-align: top; } th { color: #6c757d; font-weight: 500; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
           gap: 2px 18px; margin: 6px 0; }
dl.facts div { display: flex; gap: 8px; min-width: 0; }
dl.facts div.wide { grid-column: 1 / -1; }
dt { color: #6c757d; white-space: nowrap; } dd { margin: 0; overflow-wrap: anywhere; }
.levels { margin: 6px 0; color: #495057; }
.lvl { display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 9px;
       font-size: 12px; border: 1px solid currentColor; }
.ok { color: #2f9e44; } .bad { color: #e03131; } .skip { color: #868e96; }
.muted { color: #6c757d; }
"""


def _html_header(summary: Mapping[str, Any], batch_id: str, status: str) -> str:
    totals: Mapping[str, Any] = summary.get("totals", {})
    cards = [(totals.get(key, 0), label) for key, label in _TOTALS]
    elapsed = float(summary.get("elapsed_seconds") or 0)
    sequential = float(summary.get("sequential_seconds") or 0)
    cards += [
        (format_duration(elapsed), "elapsed"),
        (format_duration(sequential), "sequential estimate"),
        (f"{float(summary.get('time_saved_percent') or 0):.0f}%", "time saved"),
        (_cost_text(total_cost(summary)), "cost"),
    ]
    tone = {"COMPLETED": "merged", "FAILED": "failed", "PAUSED": "conflict"}.get(status, "")
    return (
        f'<h1>Batch {_e(batch_id)} <span class="status" style="background:{colour(tone)}">'
        f"{_e(status)}</span></h1>\n"
        f'<div class="muted">target {_e(summary.get("target", "?"))} · '
        f"checkpoint {_e(summary.get('checkpoint', ''))}</div>\n"
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
        + "</div>"
    )


_TOTALS = (
    ("total", "PRPs"),
    ("completed", "merged"),
    ("partial", "partial"),
    ("conflict", "conflict"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("not_started", "not finished"),
)


def _cost_text(cost: object) -> str:
    return f"${cost:.2f}" if isinstance(cost, int | float) else "not reported"


def _tokens_text(inputs: object, outputs: object) -> str:
    if not isinstance(inputs, int) or not isinstance(outputs, int):
        return ""
    return f"{inputs:,} in, {outputs:,} out"


def _html_next_steps(summary: Mapping[str, Any]) -> str:
    parts = []
    if summary.get("pause_reason"):
        parts.append(f'<div class="pause"><pre>{_e(summary["pause_reason"])}</pre></div>')
    for key, heading in (("next_steps", "Next steps"), ("warnings", "Warnings")):
        # The pause reason is shown above already, though the summary lists it as a step too.
        items = [i for i in summary.get(key) or [] if i != summary.get("pause_reason")]
        if items:
            lis = "".join(f"<li><pre>{_e(item)}</pre></li>" for item in items)
            parts.append(f"<h2>{heading}</h2><ul>{lis}</ul>")
    kept = summary.get("kept_worktrees") or []
    if kept:
        lis = "".join(f"<li><code>{_e(path)}</code></li>" for path in kept)
        parts.append(f"<h2>Kept for inspection</h2><ul>{lis}</ul>")
    return "\n".join(parts)


# The timeline: one bar per PRP, its history cut into segments by the board.


@dataclass(frozen=True, kw_only=True)
class _Bar:
    id: str
    title: str
    state: str
    start: float | None
    end: float | None
    segments: tuple[Segment, ...] = ()
    marks: tuple[tuple[float, str], ...] = ()  # (time, "merged" | "conflict")
    note: str = ""


def _bars(summary: Mapping[str, Any], board: BoardState) -> list[_Bar]:
    prps: Mapping[str, Mapping[str, Any]] = summary.get("prps", {})
    order = list(prps) + [row.id for row in board.rows if row.id not in prps]
    end = board.finished_at or _latest(summary, board)
    bars = []
    for prp_id in order:
        row, prp = board.row(prp_id), prps.get(prp_id, {})
        bars.append(_bar(prp_id, row, prp, board, end))
    return bars


def _bar(
    prp_id: str,
    row: PrpRow | None,
    prp: Mapping[str, Any],
    board: BoardState,
    end: float,
) -> _Bar:
    state = str(prp.get("state") or (row.state.value if row else "pending"))
    title = str(prp.get("title") or (row.title if row else ""))
    marks = tuple((m.at, m.step) for m in board.merges if m.prp == prp_id)
    if row is not None and row.started_at is not None:
        return _Bar(
            id=prp_id,
            title=title,
            state=state,
            start=row.started_at,
            end=row.finished_at or end,
            segments=segments(row, end),
            marks=marks,
        )
    start, finish = prp.get("started_at"), prp.get("finished_at")
    if isinstance(start, int | float) and isinstance(finish, int | float):  # an earlier run's
        return _Bar(id=prp_id, title=title, state=state, start=start, end=finish, marks=marks)
    note = (row.message if row else "") or str(prp.get("error") or "") or state
    return _Bar(id=prp_id, title=title, state=state, start=None, end=None, note=note)


def _latest(summary: Mapping[str, Any], board: BoardState) -> float:
    times = [p.get("finished_at") for p in summary.get("prps", {}).values()]
    times += [row.finished_at for row in board.rows]
    known = [float(t) for t in times if isinstance(t, int | float)]
    return max(known, default=board.started_at or time.time())


@dataclass(frozen=True, kw_only=True)
class _Scale:
    t0: float
    t1: float
    x0: float
    x1: float

    def x(self, t: float) -> float:
        span = max(self.t1 - self.t0, 1e-9)
        return self.x0 + (min(max(t, self.t0), self.t1) - self.t0) / span * (self.x1 - self.x0)


_WIDTH = 1100
_ROW = 28
_TOP = 34
_BOTTOM = 30
_BAR_HEIGHT = 16
_TICK_STEPS = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    43200,
)


def _svg_timeline(bars: list[_Bar], board: BoardState) -> str:
    if not bars:
        return '<p class="muted">No PRPs ran.</p>'
    scale = _scale_for(bars, board)
    height = _TOP + _ROW * len(bars) + _BOTTOM
    parts = [
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="timeline of the batch">',
        '<defs><pattern id="stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" '
        'fill-opacity="0.45"/></pattern></defs>',
        *_svg_stages(board, scale, height),
        *_svg_axis(scale, height),
    ]
    for index, bar in enumerate(bars):
        parts += _svg_bar(bar, scale, _TOP + _ROW * index)
    parts.append("</svg>")
    return "\n".join(parts)


def _scale_for(bars: list[_Bar], board: BoardState) -> _Scale:
    starts = [b.start for b in bars if b.start is not None]
    ends = [b.end for b in bars if b.end is not None]
    starts += [s.started_at for s in board.stages]
    t0 = min([*starts, *([board.started_at] if board.started_at else [])], default=0.0)
    t1 = max([*ends, *([board.finished_at] if board.finished_at else []), t0 + 0.5])
    label_width = min(max(len(b.id) for b in bars) * 7.5 + 24, 230)
    return _Scale(t0=t0, t1=t1, x0=label_width, x1=_WIDTH - 16)


def _svg_stages(board: BoardState, scale: _Scale, height: int) -> Iterator[str]:
    for span in board.stages:
        x = scale.x(span.started_at)
        end = scale.x(span.finished_at or scale.t1)
        shade = "#f1f3f5" if span.stage % 2 else "#f8f9fa"
        yield (
            f'<rect x="{x:.1f}" y="{_TOP - 6}" width="{max(end - x, 0):.1f}" '
            f'height="{height - _TOP - _BOTTOM + 10}" fill="{shade}"/>'
        )
        yield (
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height - _BOTTOM + 4}" '
            'stroke="#868e96" stroke-dasharray="4 3"/>'
        )
        yield f'<text class="stage" x="{x + 4:.1f}" y="22">Stage {span.stage}</text>'


def _svg_axis(scale: _Scale, height: int) -> Iterator[str]:
    span = scale.t1 - scale.t0
    step = next((s for s in _TICK_STEPS if span / s <= 10), math.ceil(span / 10 / 3600) * 3600)
    y = height - _BOTTOM + 4
    yield (f'<line x1="{scale.x0:.1f}" y1="{y}" x2="{scale.x1:.1f}" y2="{y}" stroke="#ced4da"/>')
    for n in range(int(span / step + 1e-9) + 1):
        x = scale.x(scale.t0 + n * step)
        label = f"{n * step:.1f}s" if step < 1 else format_duration(n * step)
        yield f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#adb5bd"/>'
        yield f'<text class="axis" x="{x:.1f}" y="{y + 17}" text-anchor="middle">{label}</text>'


def _svg_bar(bar: _Bar, scale: _Scale, y: int) -> list[str]:
    mid = y + _ROW / 2
    parts = [
        f'<a href="#{_anchor(bar.id)}"><text x="{scale.x0 - 10:.1f}" y="{mid + 4:.1f}" '
        f'text-anchor="end" font-weight="600">{_e(bar.id)}<title>{_e(bar.title)}</title>'
        "</text></a>"
    ]
    if bar.start is None or bar.end is None:
        parts.append(
            f'<text x="{scale.x0 + 6:.1f}" y="{mid + 4:.1f}" fill="#868e96">{_e(bar.note)}</text>'
        )
        return parts
    top = mid - _BAR_HEIGHT / 2
    x0, x1 = scale.x(bar.start), scale.x(bar.end)
    fill = colour(bar.state)
    parts.append(
        f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 2):.1f}" '
        f'height="{_BAR_HEIGHT}" rx="3" fill="{fill}" fill-opacity="0.18" stroke="{fill}">'
        f"<title>{_e(bar.id)}: {_e(bar.state)}, "
        f"{_e(format_duration(bar.end - bar.start))}</title></rect>"
    )
    phase_index = 0
    for segment in bar.segments:
        phase_index += segment.kind is SegmentKind.PHASE
        parts += _svg_segment(bar, segment, scale, top, phase_index)
    for at, step in bar.marks:
        parts.append(_svg_mark(scale.x(at), mid, step, bar.id))
    return parts


def _svg_segment(
    bar: _Bar, segment: Segment, scale: _Scale, top: float, phase_index: int
) -> list[str]:
    x0, x1 = scale.x(segment.start), scale.x(segment.end)
    width = max(x1 - x0, 1.0)
    opacity = _KIND_OPACITY[segment.kind]
    if segment.kind is SegmentKind.PHASE and phase_index % 2 == 0:
        opacity = 0.75  # neighbouring phases told apart by shade
    tip = (
        f"<title>{_e(bar.id)} {_e(segment.label)}: {_e(segment.kind.value)}, "
        f"{_e(format_duration(segment.end - segment.start))}</title>"
    )
    geometry = f'x="{x0:.1f}" y="{top:.1f}" width="{width:.1f}" height="{_BAR_HEIGHT}"'
    parts = [
        f'<rect {geometry} fill="{colour(bar.state)}" fill-opacity="{opacity}" '
        f'stroke="#fff" stroke-width="1">{tip}</rect>'
    ]
    if segment.kind is SegmentKind.VALIDATE:
        parts.append(f'<rect {geometry} fill="url(#stripes)"/>')
    if width >= 7 * len(segment.label) + 6:
        parts.append(
            f'<text class="seg-label" x="{x0 + width / 2:.1f}" y="{top + 12:.1f}" '
            f'text-anchor="middle">{_e(segment.label)}</text>'
        )
    return parts


def _svg_mark(x: float, mid: float, step: str, prp_id: str) -> str:
    tip = f"<title>{_e(prp_id)}: {_e(step)}</title>"
    if step == "merged":
        corners = ((x, mid - 8), (x + 6, mid), (x, mid + 8), (x - 6, mid))
        points = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in corners)
        return f'<polygon points="{points}" fill="#1b5e20" stroke="#fff">{tip}</polygon>'
    return (
        f'<path d="M{x - 5:.1f},{mid - 5:.1f} l10,10 m0,-10 l-10,10" stroke="#c92a2a" '
        f'stroke-width="3">{tip}</path>'
    )


def _html_legend() -> str:
    outcomes = [*OUTCOME_COLOUR.items(), ("unfinished", _UNFINISHED_COLOUR)]
    items = [f'<span><i class="sw" style="background:{c}"></i>{_e(s)}</span>' for s, c in outcomes]
    items += [
        "<span>segments: P<i>n</i> = phase <i>n</i> (cut at its checkpoint commit), "
        "striped = validation, pale = waiting for the merge lane</span>",
        '<span><span style="color:#1b5e20">◆</span> merged '
        '<span style="color:#c92a2a">✕</span> conflict · dashed lines: stage starts</span>',
    ]
    return f'<div class="legend">{"".join(items)}</div>'


# Per PRP: what happened, the validation levels, the diffstat, the end of the log.


def _anchor(prp_id: str) -> str:
    return "prp-" + re.sub(r"[^A-Za-z0-9_.-]", "-", prp_id)


def _html_prp(prp_id: str, prp: Mapping[str, Any], diffstat: str | None, tail: str | None) -> str:
    state = str(prp.get("state", ""))
    facts = _facts(prp)
    pairs = "".join(
        f"<div{_WIDE.get(k, '')}><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts if v
    )
    parts = [
        f'<section class="prp" id="{_e(_anchor(prp_id))}" '
        f'style="border-left-color:{colour(state)}">',
        f"<h3>{_e(prp_id)}: {_e(prp.get('title', ''))} "
        f'<span class="status" style="background:{colour(state)}">{_e(state)}</span></h3>',
        f'<dl class="facts">{pairs}</dl>',
        _html_validation(prp.get("validation_results") or {}),
    ]
    if diffstat:
        parts.append(f"<h4>Diffstat</h4><pre>{_e(diffstat)}</pre>")
    if tail:
        opened = "" if state == "merged" else " open"
        parts.append(f"<details{opened}><summary>Log tail</summary><pre>{_e(tail)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


_WIDE = {"error": ' class="wide"'}


def _facts(prp: Mapping[str, Any]) -> list[tuple[str, str]]:
    done = len(prp.get("phases_completed") or [])
    seconds = prp.get("duration_seconds")
    return [
        ("stage", str(prp.get("stage", ""))),
        ("model", str(prp.get("model") or "")),
        ("phases", f"{done}/{prp.get('phases_total', '?')}"),
        ("duration", format_duration(float(seconds)) if isinstance(seconds, int | float) else ""),
        ("attempts", str(prp.get("attempts") or "")),
        ("cost", _cost_text(prp.get("cost_usd"))),
        ("tokens", _tokens_text(prp.get("input_tokens"), prp.get("output_tokens"))),
        ("branch", str(prp.get("branch") or "")),
        ("worktree", str(prp.get("worktree") or "")),
        ("merged as", str(prp.get("merged_as") or "")),
        ("error", str(prp.get("error") or "")),
    ]


def _html_validation(results: Mapping[str, Mapping[str, Any]]) -> str:
    if not results:
        return '<p class="muted">No validation ran.</p>'
    chips, errors = [], []
    for key, result in sorted(results.items()):
        name = _e(level_name(key))
        if result.get("skipped"):
            chips.append(f'<span class="lvl skip">{name} skipped</span>')
        elif result.get("passed"):
            chips.append(f'<span class="lvl ok">{name} ✓</span>')
        else:
            chips.append(f'<span class="lvl bad">{name} ✗</span>')
            detail = "\n".join(str(e) for e in result.get("errors", [])) or "failed"
            errors.append(f"<pre>{name}: {_e(detail)}</pre>")
    return f'<div class="levels">Validation {"".join(chips)}</div>{"".join(errors)}'


def _html_notices(board: BoardState) -> str:
    if not board.notices:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_clock(n.at))}</td><td>{_e(n.level)}</td><td>{_e(n.prp or '')}</td>"
        f"<td>{_e(n.message)}</td></tr>"
        for n in board.notices
    )
    return f"<h2>Notices</h2><table>{rows}</table>"


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))
