"""The plainest frontmatters read line by line, with no parser: most PRPs of a large batch.

A document read here has only lines of three shapes: `key: value`, `key: [a, b]` and, after a
`key:` with nothing after it, block items `- value` at one indentation; its keys are words, its
values ASCII letters, digits and `_./()+=,-` and spaces inside (no `:`, `#`, quote, anchor,
tag, tab or line break of another kind), so each is a plain scalar YAML reads whole, and is
resolved by the same rules (`event_yaml`'s) into the same value. Any other line, a duplicate key
or a value the rules would not build as ruamel does returns `NOT_READ`, and the document goes to
the parser.
"""

from __future__ import annotations

import re
from typing import Any

from ce.prp.event_yaml import Rules, Unusual, plain

NOT_READ = object()

_VALUE = r"[A-Za-z0-9_/(](?:[A-Za-z0-9_./()+=, -]*[A-Za-z0-9_./()+=,-])?"
_ITEM = r"[A-Za-z0-9_/(](?:[A-Za-z0-9_./()+= -]*[A-Za-z0-9_./()+=-])?"  # no `,` in a flow
_LINE = re.compile(
    rf"(?P<key>[A-Za-z_][A-Za-z0-9_-]*):(?: (?:(?P<value>{_VALUE})"
    rf"|(?P<flow>\[ *(?:{_ITEM}(?: *, *{_ITEM})*)? *\])))?"
    rf"|(?P<indent> *)- (?P<item>{_VALUE})"
)


def lines_load(text: str, rules: Rules) -> Any:
    """The mapping `text` is, or `NOT_READ` when it is not of the plainest shape."""
    try:
        return _mapping(text, rules)
    except Unusual:
        return NOT_READ


def _mapping(text: str, rules: Rules) -> Any:
    if not text.endswith("\n"):
        return NOT_READ
    mapping: dict[Any, Any] = {}
    items: list[Any] | None = None  # the block sequence being read, when one is open
    indent = ""
    pending: Any = NOT_READ  # a `key:` with nothing after it: a null, or the items below it
    match = _LINE.fullmatch
    for line in text[:-1].split("\n"):
        found = match(line)
        if found is None:  # a blank line, a comment, anything else: the parser's
            return NOT_READ
        item = found["item"]
        if item is not None:
            if items is None:
                if pending is NOT_READ:
                    return NOT_READ
                items = mapping[pending] = []
                indent, pending = found["indent"], NOT_READ
            elif found["indent"] != indent:
                return NOT_READ
            items.append(plain(item, rules))
            continue
        if pending is not NOT_READ:
            mapping[pending] = plain("", rules)
        items, pending = None, NOT_READ
        name = plain(found["key"], rules)
        if name in mapping:
            return NOT_READ
        value, flow = found.group("value", "flow")
        if value is not None:
            mapping[name] = plain(value, rules)
        elif flow is not None:
            inside = flow[1:-1].strip()
            mapping[name] = [plain(i.strip(), rules) for i in inside.split(",")] if inside else []
        else:
            pending = name
            mapping[name] = None  # its place in the order kept; its value set below
    if pending is not NOT_READ:
        mapping[pending] = plain("", rules)
    return mapping if mapping else NOT_READ
