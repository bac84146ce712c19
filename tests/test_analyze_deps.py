"""The analyzer contract: `ce analyze-deps FILE.json` and `python -m ce.deps FILE.json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ce.cli import path_text, run
from ce.core.errors import CeError
from ce.plan.deps import analyze, render

SAMPLE_ITEMS: list[dict[str, Any]] = [
    {"id": "12.3.1", "dependencies": ["12.2.1", "PRP-12.2.2"], "files": ["src/app/api.py"]},
    {"id": "PRP-12.1.1", "dependencies": [], "files": ["src/app/config.py"]},
    {"id": "12.2.2", "dependencies": ["12.1.1"], "files": ["./src/app/__init__.py"]},
    {"id": "12.2.1", "dependencies": ["PRP-12.1.1"], "files": ["src/app/__init__.py"]},
]
# Ids come back exactly as the items spell them; a dependency may spell them either way.
SAMPLE_RESULT = {
    "sorted_order": ["PRP-12.1.1", "12.2.1", "12.2.2", "12.3.1"],
    "stages": {"1": ["PRP-12.1.1"], "2": ["12.2.1"], "3": ["12.2.2"], "4": ["12.3.1"]},
    "file_conflicts": {"src/app/__init__.py": ["12.2.1", "12.2.2"]},
    "has_cycles": False,
}
CYCLE_ITEMS = [
    {"id": "A", "dependencies": ["C"], "files": ["x.py"]},
    {"id": "B", "dependencies": ["A"], "files": ["x.py"]},
    {"id": "C", "dependencies": ["B"]},
    {"id": "D"},
]
CYCLE_RESULT = {
    "sorted_order": [],
    "stages": {},
    "file_conflicts": {"x.py": ["A", "B"]},
    "has_cycles": True,
    "cycle": ["A", "C", "B", "A"],
}


def test_analyze_sample() -> None:
    assert analyze({"items": SAMPLE_ITEMS}) == SAMPLE_RESULT
    assert analyze({"items": list(reversed(SAMPLE_ITEMS))}) == SAMPLE_RESULT


def test_analyze_reports_a_cycle_with_its_path() -> None:
    assert analyze({"items": CYCLE_ITEMS}) == CYCLE_RESULT
    self_loop = analyze({"items": [{"id": "A", "dependencies": ["PRP-A"]}]})
    assert (self_loop["has_cycles"], self_loop["cycle"]) == (True, ["A", "A"])


def test_analyze_echoes_the_ids_as_given() -> None:
    # The seed's analyzer contract: its caller looks the ids up in its own table.
    items = [
        {"id": "P1", "dependencies": ["P0"], "files": ["a.py"]},
        {"id": "P0", "files": ["a.py"]},
        {"id": "prp-x", "files": ["a.py"]},
    ]
    assert analyze({"items": items}) == {
        "sorted_order": ["P0", "prp-x", "P1"],
        "stages": {"1": ["P0"], "2": ["prp-x"], "3": ["P1"]},
        "file_conflicts": {"a.py": ["P0", "P1", "prp-x"]},
        "has_cycles": False,
    }


def test_analyze_accepts_depends_on_as_the_frontmatter_does() -> None:
    items = [{"id": "P1", "depends_on": ["P0"]}, {"id": "P0", "depends_on": None}]
    assert analyze({"items": items})["stages"] == {"1": ["P0"], "2": ["P1"]}


def test_order_breaks_ties() -> None:
    items = [
        {"id": "A", "files": ["f.py"], "order": 2},
        {"id": "B", "files": ["f.py"], "order": 1},
        {"id": "C", "dependencies": None, "files": None},
    ]
    assert analyze({"items": items})["stages"] == {"1": ["B", "C"], "2": ["A"]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "the top level: should be a JSON object"),
        ({}, "items: missing"),
        ({"items": {}}, "items: should be a list"),
        ({"items": [{"id": "A"}, {"ids": "B"}]}, "items[1].id: missing; items[1].ids: unknown"),
        ({"items": [{"id": 7}]}, "items[0].id: should be a string"),
        ({"items": [{"id": "A", "dependencies": "B"}]}, "items[0].dependencies: should be a list"),
        ({"items": [{"id": "A", "files": [1]}]}, "items[0].files[0]: should be a string"),
        ({"items": [{"id": "A", "order": "1"}]}, "items[0].order: should be an integer"),
        ({"items": [{"id": "a b"}]}, "input: items[0].id is 'a b', which is not a PRP id"),
        (
            {"items": [{"id": "A", "dependencies": ["B"]}]},
            "PRP-A (input items[0]) depends on PRP-B, which is not part of this plan",
        ),
        (
            {"items": [{"id": "A"}, {"id": "PRP-A"}]},
            "Duplicate PRP id PRP-A in input items[0] and input items[1]",
        ),
        (
            {"items": [{"id": "A", "dependencies": [], "depends_on": ["B"]}, {"id": "B"}]},
            "input: items[0] has both `dependencies` and `depends_on`; keep only one of them",
        ),
    ],
)
def test_analyze_rejects_what_it_cannot_plan(data: object, message: str) -> None:
    with pytest.raises(CeError) as caught:
        analyze(data)
    assert message in str(caught.value)


# -- through the command line -----------------------------------------------------------------


def write_json(tmp_path: Path, data: object, name: str = "items.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_cli_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path, {"items": SAMPLE_ITEMS})
    assert run(["analyze-deps", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == SAMPLE_RESULT
    assert err == ""


def test_cli_cycle_prints_json_then_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path, {"items": CYCLE_ITEMS})
    assert run(["analyze-deps", str(path)]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == CYCLE_RESULT
    assert f"{path}: dependency cycle A → C → B → A" in err
    assert "remove one of these dependencies" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Cannot read {path}: No such file or directory"),
        (b"\xff\xfe", "Cannot read {path}: it is not UTF-8 text"),
        (b'{"items": [', "{path} is not valid JSON: Expecting value at line 1, column 12"),
        (
            b'{"items": [{"id": "A"}, {"id": "B", "dependencies": "A"}]}',
            "{path} does not have the analyzer's input shape: items[1].dependencies",
        ),
    ],
)
def test_cli_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "items.json"
    if content is not None:
        path.write_bytes(content)
    assert run(["analyze-deps", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")
    assert message.format(path=path) in err
    assert "\n" not in err.strip()  # one paragraph


def test_cli_directory_is_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["analyze-deps", str(tmp_path)]) == 2
    assert f"Cannot read {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data",
    [
        {"items": SAMPLE_ITEMS},
        {"items": CYCLE_ITEMS},
        {"items": [{"id": "A", "dependencies": ["B"]}]},
        {"items": [{"id": "A", "files": [1]}]},
    ],
)
def test_cli_without_click_is_the_cli_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: object
) -> None:
    # `ce analyze-deps FILE` runs without click; `--` sends the same command through it.
    path = write_json(tmp_path, data)
    direct = run(["analyze-deps", str(path)]), capsys.readouterr()
    through_click = run(["analyze-deps", "--", str(path)]), capsys.readouterr()
    assert direct == through_click


@pytest.mark.parametrize(
    "name",
    ["items.json", "./items.json", "sub//items.json", "sub/./items.json", "sub/../items.json",
     "items.json/", "sub/", "missing.json", "/", "//", "///x"],
)  # fmt: skip
def test_cli_without_click_names_the_file_as_click_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    (tmp_path / "sub").mkdir()
    write_json(tmp_path, {"items": CYCLE_ITEMS})
    monkeypatch.chdir(tmp_path)
    direct = run(["analyze-deps", name]), capsys.readouterr()
    through_click = run(["analyze-deps", "--", name]), capsys.readouterr()
    assert direct == through_click


_IDS = ["PRP-1.1", "1.1", "prp-1.2", "PRP-1.3", "P0"]
_ID = st.sampled_from([*_IDS, "bad id", 7, None])
_LIKELY_ITEM = st.fixed_dictionaries(  # mostly a valid item: the quick look's case
    {"id": st.sampled_from(_IDS)},
    optional={
        "dependencies": st.lists(st.sampled_from(_IDS), max_size=3),
        "files": st.lists(st.sampled_from(["a.py", "./a.py", "b/", "b/*.py"]), max_size=2),
        "order": st.none() | st.integers(-2, 2) | st.booleans(),
    },
)
_ANY_ITEM = st.fixed_dictionaries(
    {"id": _ID},
    optional={
        "dependencies": st.none() | st.lists(_ID, max_size=3),
        "depends_on": st.lists(_ID, max_size=2),
        "files": st.none() | st.lists(st.sampled_from(["a.py", " ", 3]), max_size=2),
        "order": st.none() | st.integers(-2, 2) | st.booleans(),
        "extra": st.just(1),
    },
)


@given(st.lists(_LIKELY_ITEM | _ANY_ITEM, max_size=4))
def test_the_quick_look_agrees_with_the_full_one(items: list[dict[str, Any]]) -> None:
    # The common case is read in one pass; an item with `depends_on` (null here: no meaning)
    # takes the full look. Whatever the input, both give the same plan or the same error.
    full = [{"depends_on": None, **item} for item in items]
    assert outcome({"items": items}) == outcome({"items": full})


def outcome(data: object) -> object:
    try:
        return analyze(data, source="f.json")
    except CeError as exc:
        return str(exc)


@given(st.text(alphabet="/.a ", max_size=12))
def test_path_text_is_str_of_path(name: str) -> None:
    assert path_text(name) == str(Path(name))


@pytest.mark.parametrize(
    "result",
    [
        SAMPLE_RESULT,
        CYCLE_RESULT,
        {},
        {"a": [], "b": {}, "c": {"d": [1, True, None, 'é"\n'], "e": {"f": []}}, "g": False},
    ],
)
def test_render_is_json_dumps_indented(result: dict[str, Any]) -> None:
    assert render(result) == json.dumps(result, indent=2)


def python_m_ce_deps(path: Path, hash_seed: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "ce.deps", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_python_m_ce_deps_is_deterministic(tmp_path: Path) -> None:
    items = [
        {"id": f"9.{n}", "dependencies": [f"9.{n // 2}"] if n > 1 else [], "files": [f"f{n % 3}"]}
        for n in range(1, 13)
    ]
    forward = write_json(tmp_path, {"items": items}, "forward.json")
    backward = write_json(tmp_path, {"items": items[::-1]}, "backward.json")
    first = python_m_ce_deps(forward, "1")
    second = python_m_ce_deps(backward, "4242")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["has_cycles"] is False


def test_python_m_ce_deps_cycle(tmp_path: Path) -> None:
    done = python_m_ce_deps(write_json(tmp_path, {"items": CYCLE_ITEMS}), "0")
    assert done.returncode == 2
    assert json.loads(done.stdout) == CYCLE_RESULT
    assert "dependency cycle A → C → B → A" in done.stderr


def test_python_m_ce_deps_does_not_load_the_cli(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"items": [{"id": "P0"}]})
    script = (
        "import runpy, sys; sys.argv = ['ce.deps', sys.argv[1]]\n"
        "try:\n    runpy.run_module('ce.deps', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'ce.cli' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ce'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stages"] == {"1": ["P0"]}


def test_python_m_ce_deps_input_error(tmp_path: Path) -> None:
    done = python_m_ce_deps(tmp_path / "missing.json", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"error: Cannot read {tmp_path / 'missing.json'}")
