"""`ce.core.jsontext.dumps_indented` writes what `json.dumps(value, indent=2)` writes (data)."""

from __future__ import annotations

import json

import pytest

from ce.core.jsontext import dumps_indented

VALUES: list[object] = [
    {},
    [],
    "",
    None,
    True,
    0,
    -7,
    1.5,
    1e300,
    float("nan"),
    float("-inf"),
    {"a": [], "b": {}, "c": [[], {}, [[]]]},
    {"ids": ["PRP-1.1", "PRP-1.2"], "n": [1, 2.5, None, True, False, "x"]},
    {"é": 'ü"\\\n\t\u2028\U0001f600', "nested": {"deeper": {"deepest": ["a", {"b": 1}]}}},
    ("a", ("b", 1)),
    {1: "int key", None: "null key", 2.5: "float key"},
    {"mixed": {1: [1]}},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_indented_is_json_dumps_indent_2(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


def test_what_json_refuses_it_refuses() -> None:
    with pytest.raises(TypeError):
        dumps_indented({"a": {object()}})
