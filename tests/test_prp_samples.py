"""The sample batch 12 parses to what its expected.json says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ce.prp.discover import discover_batch
from ce.prp.model import StatusClass
from ce.prp.parse import parse_prp

SAMPLES = Path(__file__).parent / "fixtures" / "prp-samples"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (SAMPLES / "expected.json").read_text(encoding="utf-8")
)["prps"]
SAMPLE_FILES = sorted(SAMPLES.glob("PRP-12.*.md"))


def test_every_expected_prp_has_a_file() -> None:
    assert sorted(parse_prp(path).id for path in SAMPLE_FILES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: path.name)
def test_sample_parses_to_expected(path: Path) -> None:
    prp = parse_prp(path)
    expected = EXPECTED[prp.id]
    assert prp.title == expected["title"]
    assert prp.status == expected["status"]
    assert list(prp.dependencies) == expected["dependencies"]
    assert prp.estimated_hours == expected["estimated_hours"]
    assert prp.complexity.value == expected["complexity"]
    assert list(prp.files) == expected["files"]
    assert [phase.title for phase in prp.phases] == expected["phases"]
    blocks = expected.get("script_blocks_per_phase", [0] * len(expected["phases"]))
    assert [len(phase.blocks) for phase in prp.phases] == blocks
    assert [phase.number for phase in prp.phases] == list(range(1, len(prp.phases) + 1))
    assert prp.warnings == tuple(_stray_phase(path, line) for line in STRAY.get(prp.id, ()))
    assert prp.status_class is StatusClass.READY


# The "Rollout Plan" phases: not phases, said with their line (issue 16 item 2).
STRAY = {"PRP-12.1.1": (39,), "PRP-12.2.1": (44,)}


def _stray_phase(path: Path, line: int) -> str:
    heading = path.read_text(encoding="utf-8").splitlines()[line - 1]
    assert heading.startswith("### Phase ")
    return (
        f"{path}:{line}: `{heading}` is under `## {_section_above(path, line)}`, outside the "
        "implementation section, so it is not a phase ce runs; move it under "
        "`## Implementation` if it is one."
    )


def _section_above(path: Path, line: int) -> str:
    above = path.read_text(encoding="utf-8").splitlines()[: line - 1]
    return next(text[3:] for text in reversed(above) if text.startswith("## "))


def test_sample_details_beyond_expected_json() -> None:
    cache = parse_prp(SAMPLES / "PRP-12.2.1-cache-layer.md")
    assert (cache.batch_id, cache.stage_hint, cache.order) == ("12", 2, 2)
    assert dict(cache.extra) == {"created": "2026-03-02T00:00:00Z", "merge_order": 2}
    api = parse_prp(SAMPLES / "PRP-12.3.1-api-cache-control.md")
    assert api.model == "sonnet"
    assert api.phases[0].blocks == (
        "mkdir -p src/app\nprintf 'CACHE_CONTROL = \"max-age=60\"\\n' > src/app/api.py\n",
    )
    assert api.phases[1].blocks == (
        "printf 'def purge():\\n    return \"purged\"\\n' >> src/app/api.py\n",
    )


def test_initial_file_parses_as_one_phase() -> None:
    # Its phases sit under "## Phases", not in an implementation section.
    initial = parse_prp(SAMPLES / "PRP-12-INITIAL.md")
    assert initial.id == "PRP-12-INITIAL"
    assert initial.estimated_hours == 12.0
    assert [(p.number, p.title) for p in initial.phases] == [(1, initial.title)]
    assert dict(initial.extra) == {"batch_candidate": True}


def test_batch_discovery_of_the_samples_excludes_initial() -> None:
    discovery = discover_batch(SAMPLES, "12")
    assert [prp.id for prp in discovery.runnable] == [
        "PRP-12.1.1",
        "PRP-12.2.1",
        "PRP-12.2.2",
        "PRP-12.3.1",
    ]
    assert discovery.skipped == ()
    assert len(discovery.all_warnings) == sum(map(len, STRAY.values()))
    assert all("is not a phase ce runs" in warning for warning in discovery.all_warnings)
