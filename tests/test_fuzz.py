"""Property-based fuzzing of what users hand to `ce`: PRP files and `analyze-deps` input.

Every case must end in a plan (exit 0, JSON on stdout) or a clear user error (exit 2, a message
on stderr); never exit 1 and never a traceback. Both go through the real CLI (`ce.cli.run`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from batchkit import git
from ce.cli import run

# CE_FUZZ_EXAMPLES=2000 for a deeper search than the suite's bounded one.
FUZZ = settings(
    max_examples=int(os.environ.get("CE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Words real PRPs use, plus shell, ref and path syntax that must never reach a shell or a ref.
NASTY = [
    "PRP-5.1", "5.2", "PRP-5.1.1", "None", "[]", "planning", "completed", "draft", "high",
    "$(touch pwned)", "`touch pwned`", "; rm -rf /", "a..b", "@{-1}", "HEAD~1", "x^2", "a:b",
    "../../etc/passwd", "/abs/path", "~/x", "./a.py", "src/*.py", "ü😀", "\u202e", "-rf",
    "PRP-5.1 (note)", "5.1, 5.2", "a\\b", "'quoted'", '"dq"', "{x}", "*", "&anchor", "!tag",
]  # fmt: skip
KEYS = [
    "prp_id", "id", "title", "name", "feature_name", "status", "dependencies", "depends_on",
    "stage", "estimated_hours", "effort_hours", "files_modified", "files_created", "batch_id",
    "order", "complexity", "model", "validation", "Status", "prp-id", "extra_key",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(NASTY), inner, max_size=3)
    ),
    max_leaves=6,
)


def _yaml_value(value: Any) -> str:
    # JSON is YAML (flow style): a structured value stays structured; non-finite floats as text.
    # ensure_ascii: "😀" becomes the UTF-16 pair "\\ud83d\\ude00", which YAML reads as two halves.
    return json.dumps(value, default=str).replace("NaN", ".nan")


POOL = ["PRP-5.1", "PRP-5.2", "5.3", "PRP-5.9"]  # ids that can meet: dependencies resolve


@st.composite
def frontmatter(draw: st.DrawFn, number: int) -> str:
    fields: dict[str, str] = {
        "prp_id": f"PRP-5.{number}",
        "title": _yaml_value(draw(st.sampled_from(NASTY))),
        "status": "planning",
        "dependencies": _yaml_value(draw(st.lists(st.sampled_from(POOL), max_size=2))),
        "files_modified": _yaml_value(draw(st.lists(st.sampled_from(NASTY), max_size=3))),
    }
    mutations = draw(st.sampled_from([0, 0, 1, 2, 3]))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=mutations, unique=True)):
        if draw(st.booleans()):
            # Unquoted: may be malformed YAML, on purpose.
            fields[key] = draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=20)))
        else:
            fields[key] = _yaml_value(draw(values))
    return "\n".join(f"{key}: {value}" for key, value in fields.items())


@st.composite
def body(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(["# Title", "", "# $(touch pwned)", "#"]))]
    parts.append(draw(st.sampled_from(["## Implementation", "## 3. Implementation Steps", ""])))
    for _ in range(draw(st.integers(0, 3))):
        number = draw(st.sampled_from(["1", "2", "1", "x", "0", "99999999999999999999"]))
        parts.append(f"### Phase {number}: {draw(st.sampled_from(NASTY))}")
        if draw(st.booleans()):
            fence = draw(st.sampled_from(["```bash run", "```", "```sh run", "~~~"]))
            parts += [fence, "touch pwned", "```" if draw(st.booleans()) else ""]
    parts.append(draw(st.text(max_size=40)))
    return "\n".join(parts) + "\n"


@st.composite
def prp_file(draw: st.DrawFn, number: int) -> bytes:
    kind = draw(st.sampled_from(["valid-ish"] * 4 + ["raw", "binary"]))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "raw":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    opening = draw(st.sampled_from(["---\n"] * 4 + ["\ufeff---\r\n", ""]))
    closing = draw(st.sampled_from(["\n---\n"] * 4 + ["\n...\n", "\n"]))
    text = opening + draw(frontmatter(number)) + closing + draw(body())
    return text.encode("utf-8", "surrogatepass")


@contextlib.contextmanager
def _captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


def _run_ce(*argv: str) -> tuple[int, str, str]:
    with _captured() as (out, err):
        code = run(list(argv))
    return code, out.getvalue(), err.getvalue()


def _assert_plan_or_user_error(code: int, out: str, err: str) -> None:
    event(f"exit {code}")
    assert "Traceback" not in out + err, err
    assert "This is a bug" not in err, err
    assert code in (0, 2), f"exit {code}\nstdout: {out}\nstderr: {err}"
    if code == 2:
        assert err.strip(), "a user error says what was wrong on stderr"


@pytest.fixture
def prp_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "PRPs" / "feature-requests").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / ".ce").mkdir()
    (repo / ".ce" / "config.toml").write_text('executor = "script"\n', encoding="utf-8")
    monkeypatch.chdir(repo)
    return repo


@FUZZ
@given(
    files=st.integers(1, 3).flatmap(lambda n: st.tuples(*(prp_file(i) for i in range(1, n + 1))))
)
# A reused anchor: ruamel's pure loader warns, which -W error once turned into "a bug".
@example(files=(b"---\nprp_id: PRP-5.1\ntitle: &a x\nstatus: &a planning\n---\n",))
def test_fuzzed_prp_files_plan_or_fail_cleanly(prp_repo: Path, files: tuple[bytes, ...]) -> None:
    prp_dir = prp_repo / "PRPs" / "feature-requests"
    shutil.rmtree(prp_dir)
    prp_dir.mkdir()
    for number, data in enumerate(files, start=1):
        (prp_dir / f"PRP-5.{number}-fuzz.md").write_bytes(data)
    # Committed, as a run requires of PRP files: the case reaches the plan, not that refusal.
    git(prp_repo, "add", "-A")
    git(prp_repo, "commit", "-q", "--allow-empty", "-m", "fuzzed PRPs")

    code, out, err = _run_ce("batch-exe", "--batch", "5", "--dry-run", "--json")

    _assert_plan_or_user_error(code, out, err)
    if code == 0:
        plan = json.loads(out)
        staged = {p for stage in plan["stages"].values() for p in stage}
        assert set(plan["prps"]) == staged | set(plan["done"])
    assert not (prp_repo / "pwned").exists()


ids = st.one_of(
    st.sampled_from(POOL),
    st.sampled_from(POOL),
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.integers(-5, 50),
    st.none(),
)
items = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "dependencies": st.one_of(st.lists(ids, max_size=3), ids),
        "files": st.one_of(st.lists(st.sampled_from(["a.py", "b.py", *NASTY]), max_size=3), values),
        "order": st.one_of(st.integers(-3, 3), st.sampled_from(NASTY), st.none()),
        "other": values,
    },
)
documents = st.one_of(
    st.fixed_dictionaries({"items": st.lists(items, max_size=6)}),
    st.fixed_dictionaries({"items": values}),
    values,
)


@FUZZ
@given(
    document=documents,
    as_text=st.one_of(st.none(), st.none(), st.text(max_size=60), st.binary(max_size=60)),
)
def test_fuzzed_analyze_deps_input_plans_or_fails_cleanly(
    tmp_path: Path, document: Any, as_text: str | bytes | None
) -> None:
    path = tmp_path / "items.json"
    if as_text is None:
        path.write_text(json.dumps(document, default=str), encoding="utf-8")
    elif isinstance(as_text, bytes):
        path.write_bytes(as_text)
    else:
        path.write_text(as_text, encoding="utf-8", errors="surrogatepass")

    code, out, err = _run_ce("analyze-deps", str(path))

    _assert_plan_or_user_error(code, out, err)
    if code == 0:
        result = json.loads(out)
        assert result["has_cycles"] is False
        assert sorted(result["sorted_order"]) == sorted(
            p for stage in result["stages"].values() for p in stage
        )


def test_the_fuzz_suites_draw_from_one_fixed_seed(pytestconfig: pytest.Config) -> None:
    # conftest.py: CE_FUZZ_SEED or --hypothesis-seed, else a fixed default; printed.
    from hypothesis import core

    seed = pytestconfig.getoption("hypothesis_seed")
    assert seed is not None and seed == os.environ.get("CE_FUZZ_SEED", seed)
    assert str(core.global_force_seed) == str(seed)  # what every @given test draws from
