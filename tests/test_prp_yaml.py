"""The C-accelerated YAML loader reads every document as the pure-Python reference does."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ce
from ce.core.errors import CeError
from ce.prp import event_yaml, line_yaml, safe_yaml
from ce.prp.frontmatter import load_yaml, split_document
from ce.prp.safe_yaml import pure_load, safe_load

FIXTURES = Path(__file__).parent / "fixtures" / "prp-samples"
SHARED = Path("/work/shared/prp-samples")
SAMPLE_DIRS = [d for d in (FIXTURES, SHARED) if d.is_dir()]

# Parse every sample in a fresh interpreter and print what it read, field by field.
_PARSE_ALL = """
import sys
from pathlib import Path
from ce.prp import event_yaml, line_yaml, safe_yaml
from ce.prp.parse import parse_prp
print(safe_yaml.LOADER)
for directory in sys.argv[1:]:
    for path in sorted(Path(directory).glob("*.md")):
        try:
            print(repr(parse_prp(path)))
        except Exception as exc:
            print(path, type(exc).__name__, exc)
"""
_NO_CLIB = "import sys; sys.modules['_ruamel_yaml'] = None\n"


def _parse_samples(prelude: str = "", **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", prelude + _PARSE_ALL, *map(str, SAMPLE_DIRS)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout.splitlines()


def outcome(load: object, text: str) -> tuple[str, str]:
    try:
        return ("value", repr(load(text)))  # type: ignore[operator]
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def test_the_c_loader_is_installed_and_used() -> None:
    # ruamel.yaml.clib is a dependency wherever CPython runs: a 10k-PRP dry run depends on it.
    assert safe_yaml.LOADER == "libyaml (C)"
    assert _parse_samples()[0] == "libyaml (C)"


def test_ce_version_says_which_loader_reads_prps() -> None:
    for prelude, loader in (("", "libyaml (C)"), (_NO_CLIB, "pure Python")):
        script = f"{prelude}from ce.cli import run; run(['--version'])"
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert done.stdout == f"ce, version {ce.__version__} (YAML loader: {loader})\n"


def test_every_sample_parses_the_same_under_both_loaders() -> None:
    c_loader = _parse_samples()
    pure = _parse_samples(CE_PURE_YAML="1")
    without_clib = _parse_samples(_NO_CLIB)
    assert (c_loader[0], pure[0], without_clib[0]) == ("libyaml (C)", *["pure Python"] * 2)
    assert c_loader[1:] == pure[1:] == without_clib[1:]
    assert len(c_loader) > 10


@pytest.mark.parametrize("directory", SAMPLE_DIRS, ids=lambda d: d.name)
def test_every_frontmatter_of_the_samples_loads_the_same(directory: Path) -> None:
    for path in sorted(directory.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---"):
            yaml_text = split_document(path, text).yaml_text
            assert outcome(safe_load, yaml_text) == outcome(pure_load, yaml_text), path


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: &x 2\nc: *x\n",  # a duplicate anchor: libyaml's composer refuses it
        "a: 1\na: 2\n",
        "a: !!python/object/apply:os.system [true]\n",
        'a: "\\ud83d\\ude00"\n',  # UTF-16 halves: libyaml refuses the escape
        'a: "\x07"\n',
        "%YAML 1.1\n---\na: yes\n",
        "a: yes\nb: 0o17\nc: 017\nd: 2026-03-02\ne: .nan\nf: 1_000\n",
        "a: *nothing\n",
        "[" * 400 + "]" * 400,  # too deep for the C parser's recursion: the pure loader reads it
        "- " * 200 + "x\n",
        "\ta: 1\n",
        "a:\n\t- 1\n",
        "a: b: c\n",
        "? [a, b]\n: c\n",
        "a: [1, 2\n",
        "a: 'x\u2028y'\n",
        "a: x\x85y\n",
    ],
)
def test_hard_cases_load_the_same(text: str) -> None:
    assert outcome(safe_load, text) == outcome(pure_load, text)


def test_duplicate_anchor_is_still_refused_by_the_c_parser() -> None:
    # safe_load hands what libyaml refuses to the pure loader, whose verdict is then the one
    # given: a duplicate anchor never reads silently through the C path.
    text = "a: &x 1\nb: &x 2\n"
    loader = safe_yaml._CSafeLoader(text)
    with pytest.raises(Exception, match="found duplicate anchor"):
        loader.get_single_data()
    loader.dispose()
    assert outcome(safe_load, text) == outcome(pure_load, text)


def test_errors_name_the_same_line_under_both_loaders(tmp_path: Path) -> None:
    path = tmp_path / "PRP-1.md"
    for text in ("a: 1\nb: [\n", "a: 1\n  b: 2\n", 'a: "\x07"\n'):
        with pytest.raises(CeError) as caught:
            load_yaml(path, text)
        assert "line" in str(caught.value)


_WORDS = [
    "a", "PRP-5.1", "- ", "-", ": ", ":", "? ", "[", "]", "{", "}", ",", "&x ", "*x", "!!str ",
    "!t ", "'", '"', "\\", "#", " #c", "\n", "\n  ", "\n- ", "\t", "yes", "~", "null", ".inf",
    "0x1F", "1e3", "2026-03-02", "|\n  ", ">-\n  ", "\u2028", "\x85", "ü😀", "\\ud83d", "%", "@",
    "`", "<<: *x\n", "---", "...", "\r", "\ufeff", "\x00", "\x7f", "\xa0", "&x [", "!!binary ",
    "!!set ", "!!omap ", "=", "<<", "*x\n", "\u2029", "0o17", "017", "+.5", "-", "1:20", "\\x41",
    "\\N", "\\/", "'it''s'", '"\\""', "!!float 1", "!!int x", "!<tag:yaml.org,2002:str> ",
]  # fmt: skip


@settings(
    max_examples=int(os.environ.get("CE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(_WORDS), max_size=30).map("".join))
def test_fuzzed_documents_load_the_same(text: str) -> None:
    assert outcome(safe_load, text) == outcome(pure_load, text)


def test_json_documents_load_the_same() -> None:
    value = {"a": [1, 2.5, None, True, "x: y"], "b": {"c": "ü😀", "d": []}}
    text = json.dumps(value, ensure_ascii=False)
    assert safe_load(text) == pure_load(text) == value


_SCALARS = [
    "planning", "PRP-5.1", "Generated PRP 7", "1.5", "3-5", "8", "017", "-0", "+12", "1e3",
    "-.5", ".inf", "-.Inf", ".NaN", "true", "False", "TRUE", "yes", "no", "~", "null", "Null",
    "", "2026-03-02", "2026-03-02 10:20:30", "2026-3-2", "0x1F", "0o17", "1_000", "1.2_3", "<<",
    "=", "src/a.py", "'quoted: yes'", '"double # not a comment"', "'it''s'", '"\\t"', "ü😀",
    "x - y", "a, b", "12:30", "1:20:30",
]  # fmt: skip
_KEYS = ["prp_id", "title", "status", "1", "true", "~", "key", "Key", "files", "a b"]


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


_LEAF = st.sampled_from(_SCALARS)
_FLOW = st.lists(_LEAF.filter(lambda s: s and "," not in s), max_size=4).map(_flow)
_PAIRS = st.lists(st.tuples(st.sampled_from(_KEYS), _LEAF), max_size=3, unique_by=lambda p: p[0])


@st.composite
def _frontmatter(draw: st.DrawFn) -> str:
    """A frontmatter's shape: keys with scalars, flow lists, block lists and nested mappings."""
    lines = []
    for key in draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=6, unique=True)):
        shape = draw(st.sampled_from(["scalar", "flow", "block", "mapping"]))
        if shape == "scalar":
            lines.append(f"{key}: {draw(_LEAF)}".rstrip())
        elif shape == "flow":
            lines.append(f"{key}: {draw(_FLOW)}")
        elif shape == "block":
            lines += [f"{key}:", *(f"  - {item}" for item in draw(st.lists(_LEAF, max_size=3)))]
        else:
            pairs = draw(_PAIRS)
            lines += [f"{key}:", *(f"  {k}: {v}".rstrip() for k, v in pairs)]
    return "\n".join(lines) + "\n"


@settings(
    max_examples=int(os.environ.get("CE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_frontmatter())
def test_frontmatter_shaped_documents_load_the_same(text: str) -> None:
    # Mostly built from the parser's events directly (ce.prp.event_yaml): the same values, of
    # the same types, as ruamel's pure loader makes; duplicate keys and errors as it says them.
    assert outcome(safe_load, text) == outcome(pure_load, text)


def test_a_plain_frontmatter_is_built_from_the_parser_events() -> None:
    text = (
        "prp_id: PRP-77.1\ntitle: Generated PRP 1\nstatus: planning\nestimated_hours: 1.5\n"
        "order: 017\ncreated: 2026-03-02\ndone: false\nmodel: ~\n"
        "dependencies: [PRP-77.0, 'PRP-77.2 (later)']\nfiles_modified:\n  - src/a.py\n"
    )
    built = safe_yaml.events_load(text)
    assert repr(built) == repr(pure_load(text))
    assert built["created"] == datetime.date(2026, 3, 2) and built["order"] == 17


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\n",  # an anchor
        "a: !!str 1\n",  # a tag
        "a: 1\na: 2\n",  # a duplicate key: ruamel's error, in its words
        "<<: {a: 1}\n",  # a merge key
        "? [a, b]\n: c\n",  # a list as a key: ruamel makes it a tuple
        "a: 0x1F\n",  # an int in another base
        "a: 1\n--- \nb: 2\n",  # a second document
    ],
)
def test_what_the_events_do_not_build_as_ruamel_would_is_left_to_it(text: str) -> None:
    with pytest.raises(event_yaml.Unusual):
        safe_yaml.events_load(text)
    assert outcome(safe_load, text) == outcome(pure_load, text)


_LINE_KEYS = st.sampled_from(["a", "b", "prp_id", "true", "null", "No", "x-y", "_k", "y"])
_LINE_TEXT = st.text(alphabet="aZy09_./()+=,- :#'\"&*!", min_size=0, max_size=12)
_LINE_VALUE = st.one_of(
    _LINE_TEXT,
    st.sampled_from(["1.5", "3-5", "017", "2026-03-02", "1e3", "(x)", "a,b", "=", "_", "/p"]),
)


@st.composite
def _line_documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        key, value = draw(_LINE_KEYS), draw(_LINE_VALUE)
        shape = draw(st.sampled_from(["value", "flow", "items", "empty", "odd"]))
        if shape == "value":
            lines.append(f"{key}: {value}")
        elif shape == "flow":
            lines.append(f"{key}: [{draw(st.sampled_from(['', ' ']))}{value}, {value} ]")
        elif shape == "items":
            indent = " " * draw(st.integers(0, 3))
            items = draw(st.lists(_LINE_VALUE, min_size=1, max_size=3))
            lines += [f"{key}:", *(f"{indent}- {item}" for item in items)]
            if draw(st.booleans()):
                lines.append(f"{' ' * draw(st.integers(0, 4))}- {value}")
        elif shape == "empty":
            lines.append(f"{key}:")
        else:
            lines.append(draw(st.sampled_from(["", "# c", f"  {value}", f"{key}:{value}"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@settings(
    max_examples=int(os.environ.get("CE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_line_documents())
def test_what_is_read_line_by_line_is_what_ruamel_reads(text: str) -> None:
    # The plainest frontmatters skip the parser (ce.prp.line_yaml): whatever that reads is what
    # ruamel's pure loader makes of the text, value for value and type for type.
    read = line_yaml.lines_load(text, safe_yaml._EVENT_RULES)
    if read is not line_yaml.NOT_READ:
        assert ("value", repr(read)) == outcome(pure_load, text)
    assert outcome(safe_load, text) == outcome(pure_load, text)


def test_a_generated_frontmatter_is_read_line_by_line() -> None:
    text = (
        "prp_id: PRP-77.1\ntitle: Generated PRP 1\nstatus: planning\nestimated_hours: 3-5\n"
        "dependencies: [PRP-77.0, PRP-77.2]\nfiles_modified:\n  - src/pkg1/m3.py\nnone:\n"
    )
    read = line_yaml.lines_load(text, safe_yaml._EVENT_RULES)
    assert repr(read) == repr(pure_load(text))
    for other in ("a: 1\n\nb: 2\n", "a: 1\na: 2\n", "a: x # c\n", "a: b\n  - c\n", "a: 0x1F\n"):
        assert line_yaml.lines_load(other, safe_yaml._EVENT_RULES) is line_yaml.NOT_READ, other
