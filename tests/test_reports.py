"""The reports: JSON, JUnit XML and the HTML page, from hand-built runs and from real ones."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batchkit import CONFIG, Spec, make_batch_repo, write
from ce.cli import run
from ce.core.outcome import Summary
from ce.ui.board import BoardState
from ce.ui.reports import (
    LOG_TAIL_LINES,
    PrpExtras,
    ReportPaths,
    junit_xml,
    report_html,
    write_reports,
)
from ui_samples import TITLES, finished_board, paused_board, summary_of

IDS = list(TITLES)


def paused() -> tuple[Summary, BoardState]:
    board = paused_board()
    return summary_of(board, "PAUSED"), board


def finished() -> tuple[Summary, BoardState]:
    board = finished_board()
    return summary_of(board, "COMPLETED"), board


def suite_of(xml_text: str) -> ET.Element:
    root = ET.fromstring(xml_text)
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    return suite


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", "").split()[0]: case for case in suite.findall("testcase")}


# -- the three files --------------------------------------------------------------------------


@pytest.mark.parametrize("which", [paused, finished])
def test_write_reports_writes_three_files(tmp_path: Path, which: Any) -> None:
    summary, board = which()

    paths = write_reports(tmp_path / ".ce" / "tmp", "43", summary, board)

    assert paths == ReportPaths.of(tmp_path / ".ce" / "tmp", "43")
    assert paths.json.name == "batch-43-report.json"
    assert paths.junit.name == "batch-43-junit.xml"
    assert paths.html.name == "batch-43-report.html"
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    assert {k: data[k] for k in summary.to_json()} == json.loads(json.dumps(summary.to_json()))
    assert data["report_version"] == 1
    assert set(data["timeline"]["prps"]) == set(IDS)
    assert len(cases(suite_of(paths.junit.read_text(encoding="utf-8")))) == 5
    assert all(prp_id in paths.html.read_text(encoding="utf-8") for prp_id in IDS)
    assert sorted(p.name for p in paths.json.parent.iterdir()) == sorted(
        [paths.json.name, paths.junit.name, paths.html.name]
    )


# -- JUnit ------------------------------------------------------------------------------------


def test_junit_for_a_paused_batch() -> None:
    summary, _board = paused()

    suite = suite_of(junit_xml(summary, {"PRP-43.2.2": "log line\n\x1b[31mred\x1b[0m"}))

    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "2",
        "errors": "0",
        "skipped": "1",
    }
    by_id = cases(suite)
    assert list(by_id) == IDS
    assert by_id["PRP-43.1.1"].get("name") == 'PRP-43.1.1 Config <parser> & "loader"'
    assert by_id["PRP-43.1.1"].get("classname") == "ce.batch-43.stage-1"
    assert list(by_id["PRP-43.1.1"]) == []
    failure = by_id["PRP-43.2.2"].find("failure")
    assert failure is not None
    assert failure.get("type") == "partial"
    assert failure.get("message") == "validation L3 failed: 2 tests failed"
    assert "L3 failed: 2 tests failed: test_api <b>boom</b>" in (failure.text or "")
    assert by_id["PRP-43.2.2"].findtext("system-out") == "log line\nred"
    conflict = by_id["PRP-43.2.3"].find("failure")
    assert conflict is not None and conflict.get("type") == "conflict"
    skipped = by_id["PRP-43.3.1"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not finished: pending when the batch stopped"


def test_junit_for_a_finished_batch() -> None:
    summary, _board = finished()

    suite = suite_of(junit_xml(summary))

    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "0", "0")
    assert suite.get("time") == "206.000"
    assert cases(suite)["PRP-43.1.1"].get("time") == "89.000"


def test_junit_stays_valid_xml_whatever_the_agents_wrote() -> None:
    summary, _board = paused()
    bad = "bad \x00 bytes \x1b[1m]]> & <tags> \ufffe"
    prps = tuple(replace(p, error=bad) if p.id == "PRP-43.2.2" else p for p in summary.prps)
    summary = replace(summary, prps=prps)

    suite = suite_of(junit_xml(summary, {"PRP-43.2.2": "\x07bell \x0b and ]]>"}))

    failure = cases(suite)["PRP-43.2.2"].find("failure")
    assert failure is not None
    assert failure.get("message") == "bad  bytes ]]> & <tags> "


# -- HTML -------------------------------------------------------------------------------------


def test_html_is_self_contained_and_escapes_user_text() -> None:
    summary, board = paused()

    page = report_html(summary, board)

    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for remote in ("http:", "https:", "//cdn", "<link", "<script", "src=", "@import"):
        assert remote not in lowered, remote
    assert re.findall(r"url\(([^)]*)\)", page) == ["#stripes"] * page.count("url(")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; API" in page
    assert "Config &lt;parser&gt; &amp; &quot;loader&quot;" in page
    assert "\x1b" not in page
    assert page.count('<section class="prp"') == page.count("</section>") == 5


def svg_of(page: str) -> ET.Element:
    start, end = page.index("<svg"), page.index("</svg>") + len("</svg>")
    return ET.fromstring(page[start:end])  # well-formed, or this raises


def test_html_timeline_has_a_bar_per_prp_with_phases_merges_and_stages() -> None:
    summary, board = paused()

    svg = svg_of(report_html(summary, board))

    texts = ["".join(t.itertext()) for t in svg.iter("text")]
    labels = [t for t in texts if t.startswith("PRP-")]
    assert [label[:10] for label in labels] == IDS
    assert "Stage 1" in texts and "Stage 2" in texts
    assert {"P1", "P2", "P3", "P1–2"} <= set(texts)
    assert "pending" in texts  # PRP-43.3.1 never started
    assert len(svg.findall("polygon")) == 2  # two merges
    assert len(svg.findall("path")) == 1  # one conflict
    fills = {rect.get("fill") for rect in svg.iter("rect")}
    assert {"#2f9e44", "#e8a317", "#e8590c"} <= fills  # merged, partial, conflict


def test_html_sections_show_validation_diffstat_log_tail_and_cost(tmp_path: Path) -> None:
    summary, board = paused()
    log = tmp_path / "PRP-43.2.2.log"
    log.write_text("".join(f"\x1b[32mline {n}\x1b[0m\n" for n in range(1, 101)), encoding="utf-8")
    extras = {
        "PRP-43.2.2": PrpExtras(diffstat=" api.py | 3 ++-\n 1 file changed", log_path=log),
        "PRP-43.2.3": PrpExtras(log_path=tmp_path / "missing.log"),
    }

    paths = write_reports(tmp_path / "out", "43", summary, board, extras)

    page = paths.html.read_text(encoding="utf-8")
    section = page[page.index('id="prp-PRP-43.2.2"') :].split("</section>")[0]
    assert "api.py | 3 ++-" in section
    assert "line 100" in section and f"line {100 - LOG_TAIL_LINES + 1}\n" in section
    assert f"line {100 - LOG_TAIL_LINES}\n" not in section
    assert "L3 ✗" in section and "L1 ✓" in section and "L4 skipped" in section
    assert "2 tests failed: test_api &lt;b&gt;boom&lt;/b&gt;" in section
    first = page[page.index('id="prp-PRP-43.1.1"') :].split("</section>")[0]
    assert "$0.25" in first
    assert "not reported" in section
    assert "PRP-43.2.3 conflicts with main" in page  # the pause reason
    assert "$0.25" in page.split("<h2>")[0]  # the total in the header


# -- headless Chromium ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_chromium_renders_the_report(tmp_path: Path) -> None:
    summary, board = paused()
    paths = write_reports(tmp_path / "out", "43", summary, board)
    url = paths.html.as_uri()
    png = tmp_path / "report.png"

    chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1200,900", url)
    dom = chromium(tmp_path / "profile", "--dump-dom", url).stdout

    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 20_000  # a blank page is a few kB
    for prp_id in TITLES:
        assert f'id="prp-{prp_id}"' in dom
        assert prp_id in dom
    assert "&lt;script&gt;alert('x')&lt;/script&gt; API" in dom
    assert "<svg" in dom and "Stage 2" in dom


# -- real runs --------------------------------------------------------------------------------


def spec(prp_id: str, title: str, *writes: tuple[str, str], **more: Any) -> Spec:
    """A one-phase PRP writing each (path, text); it declares only the first path."""
    phase = [write(path, text) for path, text in writes]
    return Spec(id=prp_id, title=title, phases=[phase], files=[writes[0][0]], **more)


def run_batch(
    root: Path, monkeypatch: pytest.MonkeyPatch, specs: list[Spec], *args: str, config: str = CONFIG
) -> tuple[int, ReportPaths]:
    repo = make_batch_repo(root / "repo", specs, config=config)
    monkeypatch.chdir(repo)
    code = run(["batch-exe", "--batch", "7", *args])
    return code, ReportPaths.of(repo / ".ce" / "tmp", "7")


def test_a_real_run_writes_the_reports_and_points_at_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        spec("PRP-7.1.1", "One <1>", ("one.txt", "1")),
        spec("PRP-7.2.1", "Two", ("two.txt", "2"), deps=["PRP-7.1.1"]),
    ]

    code, paths = run_batch(tmp_path, monkeypatch, specs, "--json")

    out = capsys.readouterr()
    assert code == 0, out.err
    assert "\x1b" not in out.err  # a pipe gets plain lines
    summary = json.loads(out.out)
    assert summary["reports"] == paths.to_json()
    assert summary["next_steps"][-1] == f"Read the report: {paths.html}"
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    assert data["status"] == "COMPLETED"
    assert [s["stage"] for s in data["timeline"]["stages"]] == [1, 2]
    assert [m["prp"] for m in data["timeline"]["merges"]] == ["PRP-7.1.1", "PRP-7.2.1"]
    suite = suite_of(paths.junit.read_text(encoding="utf-8"))
    assert (suite.get("tests"), suite.get("failures")) == ("2", "0")
    page = paths.html.read_text(encoding="utf-8")
    assert "One &lt;1&gt;" in page and "PRP-7.2.1" in page
    svg_of(page)


def test_a_paused_run_writes_the_reports_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [  # both write s without declaring it: the second one's merge conflicts
        spec("PRP-7.1.1", "One", ("one.txt", "1"), ("s", "one"), order=1),
        spec("PRP-7.1.2", "Two", ("two.txt", "2"), ("s", "two"), order=2),
    ]
    config = 'executor = "script"\n[validate]\ndrift_threshold = 100\n'

    code, paths = run_batch(tmp_path, monkeypatch, specs, config=config)

    out = capsys.readouterr()
    assert code == 1
    assert str(paths.html) in out.out.replace("\n", "")
    assert json.loads(paths.json.read_text(encoding="utf-8"))["status"] == "PAUSED"
    conflict = cases(suite_of(paths.junit.read_text(encoding="utf-8")))["PRP-7.1.2"]
    failure = conflict.find("failure")
    assert failure is not None and failure.get("type") == "conflict"
    assert "merge conflict in s" in (failure.get("message") or "")
    assert "conflicts with main" in paths.html.read_text(encoding="utf-8")
