"""The frontmatter boundary, phases and script blocks of `parse_prp`; arbitrary input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from ce.core.errors import CeError
from ce.core.ids import normalize_id
from ce.prp.model import Phase, Prp
from ce.prp.parse import parse_prp

PATH = Path("PRPs/PRP-5.1.1-x.md")
FRONT = "---\nprp_id: PRP-5.1.1\ntitle: The PRP\nstatus: planning\n---\n"


def parse_body(body: str) -> Prp:
    return parse_prp(PATH, FRONT + body)


def phases_of(body: str) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(p.number, p.title, p.blocks) for p in parse_body(body).phases]


def error(text: str) -> str:
    with pytest.raises(CeError) as caught:
        parse_prp(PATH, text)
    message = str(caught.value)
    assert message.startswith(f"{PATH}: ")
    return message


# --- the frontmatter boundary ------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# Title\n\nNo frontmatter.\n", "\n---\nprp_id: 1\n---\n"])
def test_missing_frontmatter(text: str) -> None:
    assert "the file has no YAML frontmatter: its first line must be `---`" in error(text)


def test_unclosed_frontmatter() -> None:
    assert "never closed: add a `---` line" in error("---\nprp_id: PRP-1\ntitle: T\n")


def test_malformed_yaml_names_the_line_of_the_file() -> None:
    message = error("---\nprp_id: PRP-1\ntitle: a: b\nstatus: new\n---\n")
    assert "the YAML frontmatter is malformed at line 3, column 9: mapping values are not " in (
        message
    )
    assert "quote values" in message


def test_malformed_flow_list_names_where_it_started() -> None:
    message = error("---\nprp_id: PRP-1\ntitle: [unclosed\nstatus: planning\n---\n")
    assert "(while parsing a flow sequence at line 3)" in message


def test_duplicate_key_is_an_error() -> None:
    message = error("---\nprp_id: PRP-1\nstatus: new\nstatus: done\n---\n")
    assert 'at line 4, column 1: found duplicate key "status"' in message


def test_object_building_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"---\nx: !!python/object/apply:os.system ['touch {marker}']\n---\n"
    message = error(text)
    assert "ce reads plain YAML data only: remove the `!` tag" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("---\n- a\n- b\n---\n", "must be a mapping of fields"),
        ("---\njust text\n---\n", "must be a mapping of fields"),
        ("---\n---\n", "the frontmatter is empty"),
        ('---\nx: "\x07"\n---\n', "a character YAML does not allow on line 2"),
        ("---\na: *nothing\n---\n", "found undefined alias"),
        ("---\n" + "[" * 500 + "\n---\n", "nested too deeply to read: flatten it"),
    ],
)
def test_frontmatter_errors(text: str, fragment: str) -> None:
    assert fragment in error(text)


def test_bom_and_crlf() -> None:
    text = "\ufeff---\r\nprp_id: 1\r\ntitle: T\r\nstatus: new\r\n---\r\n## Implementation\r\n"
    text += "```sh run\r\necho hi\r\n```\r\n"
    prp = parse_prp(PATH, text)
    assert (prp.id, prp.title) == ("PRP-1", "T")
    assert prp.phases == (Phase(number=1, title="T", blocks=("echo hi\n",)),)
    assert prp.body == "## Implementation\n```sh run\necho hi\n```\n"


def test_dots_close_the_frontmatter() -> None:
    assert parse_prp(PATH, "---\nprp_id: 1\ntitle: T\nstatus: new\n...\nbody\n").body == "body\n"


def test_reads_the_file_when_no_text_is_given(tmp_path: Path) -> None:
    path = tmp_path / "PRP-5.1.1-x.md"
    path.write_bytes(FRONT.encode())
    assert parse_prp(path).path == path


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CeError, match=r"missing\.md: cannot read the PRP file"):
        parse_prp(tmp_path / "missing.md")
    latin = tmp_path / "latin.md"
    latin.write_bytes(FRONT.encode() + b"\ncaf\xe9\n")
    with pytest.raises(CeError, match=r"latin\.md: line 7 is not valid UTF-8"):
        parse_prp(latin)


# --- phases ------------------------------------------------------------------------------

IMPLEMENTATION = """
## Implementation

### Phase 1: Typed settings (30 minutes)

```python
# Not a phase: a heading inside a code block
### Phase 9: ignore me
```

~~~~
### Phase 8: nor this
~~~~

### Phase 2: Cache section and tests (1 hour)

## Rollout Plan

### Phase 3: Development
"""


def test_phases_of_the_implementation_section_only() -> None:
    assert phases_of(IMPLEMENTATION) == [
        (1, "Typed settings", ()),
        (2, "Cache section and tests", ()),
    ]


@pytest.mark.parametrize(
    "section",
    [
        "## Implementation",
        "## 3. Implementation Steps",
        "## 🔧 Implementation Blueprint",
        "## implementation plan ##",
    ],
)
def test_implementation_section_names(section: str) -> None:
    body = f"## Overview\n### Phase 7: Not here\n{section}\n### Phase 1: Here\n## Next\n"
    assert phases_of(body) == [(1, "Here", ())]


@pytest.mark.parametrize(
    ("heading", "number", "title"),
    [
        ("### Phase 1: Setup (15 min)", 1, "Setup"),
        ("### Phase 1: Setup (2 hours)", 1, "Setup"),
        ("### Phase 1: Setup (1.5h)", 1, "Setup"),
        ("### Phase 1: Setup (~2 hours, parallel)", 1, "Setup"),
        ("### Phase 1: Setup (30-45 minutes)", 1, "Setup"),
        ("### Phase 1: Setup (Day 1-2)", 1, "Setup"),
        ("### Phase 1: Setup (optional)", 1, "Setup (optional)"),
        ("### Phase 1: Add foo() (2 hours)", 1, "Add foo()"),
        ("### Phase 2 - Dashes", 2, "Dashes"),
        ("### Phase 3. Dotted", 3, "Dotted"),
        ("### Phase 4 — Em dash", 4, "Em dash"),
        ("### **Phase 5: Bold**", 5, "Bold"),
        ("### phase 6: lower case", 6, "lower case"),
        ("### Phase 7", 7, "Phase 7"),
        ("### Phase 8 (1 hour)", 8, "Phase 8"),
        ("### Phase 10: Closing hashes ###", 10, "Closing hashes"),
        ("   ### Phase 11:   Spaced   out  ", 11, "Spaced out"),
    ],
)
def test_phase_heading_forms(heading: str, number: int, title: str) -> None:
    assert phases_of(f"## Implementation\n{heading}\n") == [(number, title, ())]


@pytest.mark.parametrize(
    "heading",
    [
        "### Phase 1.5: Half",
        "### Phase 1A: Letter",
        "### Phases 1-2",
        "#### Phase 1: Too deep",
        "## Phase 1: Too shallow",
        "###Phase 1: No space",
        "    ### Phase 1: Indented code",
        "### Step 1: Not a phase",
    ],
)
def test_not_phase_headings(heading: str) -> None:
    assert phases_of(f"## Implementation\n{heading}\n") == [(1, "The PRP", ())]


def test_repeated_phase_number_keeps_the_first_with_a_warning() -> None:
    body = "## Implementation\n### Phase 1: First\n### Phase 2: Second\n### Phase 1: Again\n"
    body += "```sh run\necho lost\n```\n"
    prp = parse_body(body)
    assert [(p.number, p.title, p.blocks) for p in prp.phases] == [
        (1, "First", ()),
        (2, "Second", ()),
    ]
    assert prp.warnings == (
        f"{PATH}:9: a second `Phase 1` heading; the first one is kept and this section is "
        "ignored. Renumber the phases.",
        f"{PATH}:10: this `sh run` block is outside the phases of the implementation section, "
        "so it will not be run; move it under a `### Phase N: ...` heading.",
    )


def test_phases_keep_their_written_order_and_numbers() -> None:
    body = "## Implementation\n### Phase 2: B\n### Phase 1: A\n### Phase 0: Z\n"
    assert [p[:2] for p in phases_of(body)] == [(2, "B"), (1, "A"), (0, "Z")]


def test_phases_in_several_implementation_sections() -> None:
    body = "## Implementation\n### Phase 1: A\n## Notes\n## Implementation, part 2\n"
    body += "### Phase 2: B\n# Appendix\n### Phase 3: C\n"
    assert [p[:2] for p in phases_of(body)] == [(1, "A"), (2, "B")]


def test_unclosed_fence_hides_the_rest() -> None:
    body = "## Implementation\n### Phase 1: A\n````\n```\n### Phase 2: B\n"
    assert [p[:2] for p in phases_of(body)] == [(1, "A")]


# --- script blocks -----------------------------------------------------------------------


def test_run_blocks_attach_to_their_phase_in_order() -> None:
    body = """## Implementation
### Phase 1: One
```sh run
echo a
```
Text.
```bash
echo documentation
```
#### Details
```bash run
echo b
```
### Phase 2: Two
~~~ bash   run
echo c
~~~
```python run
print("not shell")
```
```sh run now
echo not exact
```
"""
    assert phases_of(body) == [(1, "One", ("echo a\n", "echo b\n")), (2, "Two", ("echo c\n",))]


def test_run_block_content_is_kept_verbatim_and_dedented_to_its_fence() -> None:
    body = "## Implementation\n### Phase 1: A\n1. Do it:\n   ```sh run\n   if true; then\n"
    body += "     echo 'indented'\n   fi\n\n   ```\n```sh run\n```\n"
    assert phases_of(body) == [
        (1, "A", ("if true; then\n  echo 'indented'\nfi\n\n", "")),
    ]


def test_long_fences_contain_short_ones() -> None:
    body = "## Implementation\n### Phase 1: A\n````sh run\n```\n### Phase 2: B\n```\n````\n"
    assert phases_of(body) == [(1, "A", ("```\n### Phase 2: B\n```\n",))]


def test_no_phase_headings_is_one_phase_with_the_implementation_blocks() -> None:
    body = "```sh run\necho before\n```\n## Implementation\n```bash run\necho in\n```\n"
    body += "## After\n```sh run\necho after\n```\n"
    prp = parse_body(body)
    assert prp.phases == (Phase(number=1, title="The PRP", blocks=("echo in\n",)),)
    assert prp.warnings == (
        f"{PATH}:6: this `sh run` block is outside the implementation section, so it will not "
        "be run.",
        f"{PATH}:14: this `sh run` block is outside the implementation section, so it will not "
        "be run.",
    )


def test_no_implementation_section_is_one_phase_with_every_block() -> None:
    body = "## Steps\n### Phase 1: Not counted\n```sh run\necho a\n```\n## More\n"
    body += "```bash run\necho b\n```\n"
    assert phases_of(body) == [(1, "The PRP", ("echo a\n", "echo b\n"))]


def test_empty_body_is_one_phase() -> None:
    assert phases_of("") == [(1, "The PRP", ())]


# --- arbitrary input ---------------------------------------------------------------------

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KNOWN_KEYS = [
    "prp_id",
    "id",
    "title",
    "feature_name",
    "name",
    "status",
    "dependencies",
    "depends_on",
    "stage",
    "estimated_hours",
    "effort_hours",
    "files_modified",
    "files_created",
    "batch_id",
    "batch",
    "order",
    "execution_order",
    "merge_order",
    "complexity",
    "model",
    "validation",
]
WORDS = [
    "planning",
    "done",
    "draft",
    "PRP-1.2",
    "43.2.1",
    "None",
    "3-5",
    "2h",
    "a.py, b.py (x)",
    "../x",
    "/abs",
    "stage-2",
    "low",
    "opus",
    "level3",
    "",
    " ",
    "uv",
    "PRP-1 (note)",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(WORDS)
    | st.text(max_size=20)
    | st.dates()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
frontmatters = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=10), values)


def dump(mapping: dict[str, object]) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(mapping, stream)
    return stream.getvalue()


def parses_or_ce_error(text: str) -> None:
    try:
        prp = parse_prp(PATH, text)
    except CeError as exc:
        assert str(exc).startswith(str(PATH))
    else:
        assert normalize_id(prp.id) == prp.id
        assert all(not f.startswith("/") and ".." not in f.split("/") for f in prp.files)


@FAST
@given(st.text())
def test_arbitrary_text_raises_only_ce_error(text: str) -> None:
    parses_or_ce_error(text)


@FAST
@given(st.text(), st.text())
def test_arbitrary_frontmatter_text_raises_only_ce_error(front: str, body: str) -> None:
    parses_or_ce_error(f"---\n{front}\n---\n{body}")


@FAST
@given(frontmatters, st.text(max_size=200))
def test_arbitrary_yaml_mappings_raise_only_ce_error(mapping: dict[str, object], body: str) -> None:
    parses_or_ce_error(f"---\n{dump(mapping)}---\n{body}")


@FAST
@given(
    st.lists(
        st.sampled_from(
            [
                "## Implementation",
                "### Phase 1: A",
                "### Phase 2: B (1h)",
                "```",
                "~~~~",
                "```sh run",
                "```bash run",
                "# T",
                "echo x",
                "",
                "## Other",
            ]
        ),
        max_size=30,
    )
)
def test_arbitrary_markdown_bodies(lines: list[str]) -> None:
    prp = parse_body("\n".join(lines))
    numbers = [phase.number for phase in prp.phases]
    assert numbers and len(numbers) == len(set(numbers))


@FAST
@given(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans()))
def test_normalize_id_returns_a_safe_id_or_none(raw: object) -> None:
    prp_id = normalize_id(raw)
    if prp_id is not None:
        assert prp_id.startswith("PRP-")
        assert not prp_id[4:].upper().startswith("PRP-")
        assert ".." not in prp_id
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in prp_id)
        assert normalize_id(prp_id) == prp_id


@FAST
@given(st.text(alphabet=st.sampled_from(list("-:[]{}#&*!|>'\"%@`,? \n\tab1.PRP")), max_size=80))
def test_yaml_punctuation_raises_only_ce_error(front: str) -> None:
    parses_or_ce_error(f"---\n{front}\n---\n")
