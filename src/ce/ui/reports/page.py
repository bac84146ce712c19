"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched.

Rendered from the typed summary; the board's record of the run gives the timeline's times and
the notices only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ce.core.durations import format_duration
from ce.core.events import PrpState
from ce.core.outcome import BatchStatus, LevelOutcome, PrpOutcome, Summary, Totals
from ce.ui.board import BoardState
from ce.ui.reports.markup import escape as _e
from ce.ui.reports.svg import anchor, bars_of, colour, html_legend, svg_timeline


def report_html(
    summary: Summary,
    board: BoardState,
    *,
    diffstats: Mapping[str, str | None] | None = None,
    tails: Mapping[str, str | None] | None = None,
) -> str:
    status = summary.status.value
    body = [
        _html_header(summary),
        _html_next_steps(summary),
        "<h2>Timeline</h2>",
        svg_timeline(bars_of(summary, board), board),
        html_legend(),
        *(
            _html_prp(prp, (diffstats or {}).get(prp.id), (tails or {}).get(prp.id))
            for prp in summary.prps
        ),
        _html_notices(board),
    ]
    return _PAGE.format(
        title=_e(f"ce batch {summary.batch_id}: {status}"),
        css=_CSS,
        body="\n".join(b for b in body if b),
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

_TONE = {
    BatchStatus.COMPLETED: PrpState.MERGED,
    BatchStatus.FAILED: PrpState.FAILED,
    BatchStatus.PAUSED: PrpState.CONFLICT,
}


def _html_header(summary: Summary) -> str:
    timing = summary.timing
    cards: list[tuple[object, str]] = [*_total_cards(summary.totals)]
    cards += [
        (format_duration(timing.elapsed_seconds), "elapsed"),
        (format_duration(timing.sequential_seconds), "sequential estimate"),
        (f"{timing.time_saved_percent:.0f}%", "time saved"),
        (_cost_text(summary.usage.cost_usd), "cost"),
    ]
    tone = colour(_TONE.get(summary.status))
    checkpoint = "" if summary.checkpoint is None else summary.checkpoint
    return (
        f'<h1>Batch {_e(summary.batch_id)} <span class="status" style="background:{tone}">'
        f"{_e(summary.status.value)}</span></h1>\n"
        f'<div class="muted">target {_e(summary.target)} · '
        f"checkpoint {_e(checkpoint)}</div>\n"
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in cards)
        + "</div>"
    )


def _total_cards(totals: Totals) -> list[tuple[int, str]]:
    return [
        (totals.total, "PRPs"),
        (totals.completed, "merged"),
        (totals.partial, "partial"),
        (totals.conflict, "conflict"),
        (totals.failed, "failed"),
        (totals.skipped, "skipped"),
        (totals.unfinished, "not finished"),
    ]


def _cost_text(cost: float | None) -> str:
    return "not reported" if cost is None else f"${cost:.2f}"


def _tokens_text(inputs: int | None, outputs: int | None) -> str:
    if inputs is None or outputs is None:
        return ""
    return f"{inputs:,} in, {outputs:,} out"


def _html_next_steps(summary: Summary) -> str:
    guidance = summary.guidance
    parts = []
    if guidance.pause_reason:
        parts.append(f'<div class="pause"><pre>{_e(guidance.pause_reason)}</pre></div>')
    for listed, heading in ((guidance.next_steps, "Next steps"), (guidance.warnings, "Warnings")):
        # The pause reason is shown above already, though the summary lists it as a step too.
        items = [i for i in listed if i != guidance.pause_reason]
        if items:
            lis = "".join(f"<li><pre>{_e(item)}</pre></li>" for item in items)
            parts.append(f"<h2>{heading}</h2><ul>{lis}</ul>")
    kept = [f"<code>{_e(path)}</code>" for path in guidance.kept_worktrees]
    kept += [f"branch <code>{_e(b)}</code> (an earlier attempt)" for b in guidance.kept_branches]
    if kept:
        lis = "".join(f"<li>{item}</li>" for item in kept)
        parts.append(f"<h2>Kept for inspection</h2><ul>{lis}</ul>")
    return "\n".join(parts)


# Per PRP: what happened, the validation levels, the diffstat, the end of the log.


def _html_prp(prp: PrpOutcome, diffstat: str | None, tail: str | None) -> str:
    tone = colour(prp.state)
    pairs = "".join(
        f"<div{_WIDE.get(k, '')}><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>"
        for k, v in _facts(prp)
        if v
    )
    parts = [
        f'<section class="prp" id="{_e(anchor(prp.id))}" style="border-left-color:{tone}">',
        f"<h3>{_e(prp.id)}: {_e(prp.info.title)} "
        f'<span class="status" style="background:{tone}">{_e(prp.state.value)}</span></h3>',
        f'<dl class="facts">{pairs}</dl>',
        _html_validation(prp.validation),
    ]
    if diffstat:
        parts.append(f"<h4>Diffstat</h4><pre>{_e(diffstat)}</pre>")
    if tail:
        opened = "" if prp.state is PrpState.MERGED else " open"
        parts.append(f"<details{opened}><summary>Log tail</summary><pre>{_e(tail)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


_WIDE = {"error": ' class="wide"'}


def _facts(prp: PrpOutcome) -> list[tuple[str, str]]:
    seconds, usage = prp.timing.duration_seconds, prp.usage
    return [
        ("stage", str(prp.info.stage)),
        ("model", prp.info.model),
        ("phases", f"{prp.phases_done}/{prp.info.phases}"),
        ("duration", "" if seconds is None else format_duration(seconds)),
        ("attempts", str(prp.attempts or "")),
        ("cost", _cost_text(usage.cost_usd)),
        ("tokens", _tokens_text(usage.input_tokens, usage.output_tokens)),
        ("branch", prp.info.branch),
        ("worktree", prp.info.worktree),
        ("merged as", prp.commits.merged_as or ""),
        ("error", prp.error or ""),
    ]


def _html_validation(levels: tuple[LevelOutcome, ...]) -> str:
    if not levels:
        return '<p class="muted">No validation ran.</p>'
    chips, errors = [], []
    for level in levels:
        name = _e(level.name)
        if level.skipped:
            chips.append(f'<span class="lvl skip">{name} skipped</span>')
        elif level.passed:
            chips.append(f'<span class="lvl ok">{name} ✓</span>')
        else:
            chips.append(f'<span class="lvl bad">{name} ✗</span>')
            detail = "\n".join(level.why()) or "failed"
            errors.append(f"<pre>{name}: {_e(detail)}</pre>")
    # What a level that did not fail left unchecked ("drift: not checked (no files declared)").
    notes = "; ".join(f"{lv.name}: {lv.errors[0]}" for lv in levels if not lv.failed and lv.errors)
    said = f'<p class="muted">{_e(notes)}</p>' if notes else ""
    return f'<div class="levels">Validation {"".join(chips)}</div>{said}{"".join(errors)}'


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
