"""The run as JUnit XML: one testcase per PRP, so CI shows which PRPs did not merge and why."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from ce.core.events import PrpState
from ce.core.outcome import Bucket, PrpOutcome, Summary
from ce.ui.reports.markup import clean_text

_FAILURES = frozenset({Bucket.FAILED, Bucket.PARTIAL, Bucket.CONFLICT})


def junit_xml(summary: Summary, tails: Mapping[str, str | None] | None = None) -> str:
    """One testcase per PRP: merged passes, a failure carries its reason, the rest are skipped."""
    batch_id = summary.batch_id
    suite = ET.Element("testsuite", name=clean_text(f"ce batch {batch_id}"))
    for prp in summary.prps:
        suite.append(_testcase(batch_id, prp, (tails or {}).get(prp.id)))
    counts = {
        "tests": len(summary.prps),
        "failures": sum(1 for case in suite if case.find("failure") is not None),
        "errors": 0,
        "skipped": sum(1 for case in suite if case.find("skipped") is not None),
    }
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{summary.timing.elapsed_seconds:.3f}")
    root = ET.Element("testsuites", name=clean_text(f"ce batch {batch_id}"))
    root.attrib.update({k: suite.attrib[k] for k in ("tests", "failures", "errors", "time")})
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(batch_id: str, prp: PrpOutcome, tail: str | None) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=clean_text(f"ce.batch-{batch_id}.stage-{prp.info.stage}"),
        name=clean_text(f"{prp.id} {prp.info.title}".strip()),
        time=f"{prp.timing.duration_seconds or 0:.3f}",
    )
    state = prp.state.value
    reason = clean_text(prp.error or "")
    if prp.bucket in _FAILURES:
        failure = ET.SubElement(case, "failure", type=state, message=reason or state)
        failure.text = "\n".join([reason, *_validation_failures(prp)]).strip() or state
    elif prp.state is PrpState.SKIPPED:
        ET.SubElement(case, "skipped", message=reason or "skipped")
    elif prp.state is not PrpState.MERGED:
        ET.SubElement(case, "skipped", message=f"not finished: {state} when the batch stopped")
    if tail and prp.state is not PrpState.MERGED:
        ET.SubElement(case, "system-out").text = clean_text(tail)
    return case


def _validation_failures(prp: PrpOutcome) -> list[str]:
    """Each failed check: what failed, then the lines of its output that matter."""
    lines = []
    for level in prp.failed_checks:
        what, *output = level.why() or ("",)
        lines.append(clean_text(f"{level.name} failed: {what}".rstrip(": ")))
        lines += [clean_text(f"  {line}") for line in output]
    return lines
