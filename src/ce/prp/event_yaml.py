"""Plain Python values straight from libyaml's parser events, for the documents a PRP's
frontmatter usually is: mappings, sequences and untagged scalars.

ruamel's safe constructor builds a node per value, resolves its tag through `Tag` objects and
constructs it through generators: about three quarters of the C loader's time per frontmatter.
Here each event goes straight into the list or dict it belongs to, and a plain scalar is
resolved by the same YAML 1.2 rules (ruamel's own regular expressions) into the same value.
Whatever this does not build exactly as the safe constructor would (a tag, an anchor or an alias,
a merge key `<<`, a key that is a list or a mapping, a duplicate key, an int written in another
base, a second document) raises `Unusual`, and the caller reads the document the full way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.events import (
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.util import create_timestamp, timestamp_regexp

_TAG = "tag:yaml.org,2002:"


class Unusual(Exception):
    """The document needs ruamel's constructor: what this module builds would differ."""


Rules = dict[str, list[tuple[str, re.Pattern[str]]]]


def compiled(rules: dict[str | None, list[Any]]) -> Rules:
    """A resolver's rules (first character -> (tag, regexp)) with each regexp compiled: ruamel
    keeps them lazy, behind an attribute lookup in Python at every match."""
    return {
        first: [(tag, re.compile(regexp.pattern, regexp.flags)) for tag, regexp in listed]
        for first, listed in rules.items()
        if first is not None  # a rule for any first character: YAML 1.2 has none
    }


def load_events(parser: Any, rules: Rules) -> Any:
    """The one document of `parser` (a `_ruamel_yaml.CParser`), built as plain data by the
    YAML 1.2 resolver `rules` (first character -> (tag, pattern) list)."""
    get = parser.get_event
    get()  # the stream's start
    if type(get()) is StreamEndEvent:  # no document at all (only comments)
        return None
    value = _document(get, rules)
    if type(get()) is not StreamEndEvent:  # a second document: ruamel's composer refuses it
        raise Unusual
    return value


def _document(get: Callable[[], Any], rules: Rules) -> Any:
    # Each open collection: (the list, None) or (the dict, [the key read, or _NO_KEY]).
    open_: list[tuple[Any, list[Any] | None]] = []
    root = None
    while True:
        event = get()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None or event.ctag is not None:
                raise Unusual
            value = plain(event.value, rules) if event.implicit[0] else event.value
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.ctag is not None:
                raise Unusual
            open_.append(({}, [_NO_KEY]) if kind is MappingStartEvent else ([], None))
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = open_.pop()[0]
        elif kind is DocumentEndEvent:
            return root
        else:  # an alias
            raise Unusual
        if not open_:
            root = value
            continue
        into, key = open_[-1]
        if key is None:
            into.append(value)
        elif key[0] is _NO_KEY:
            if isinstance(value, list | dict):  # ruamel makes a list key a tuple
                raise Unusual
            key[0] = value
        else:
            if key[0] in into:  # ruamel's duplicate key error, in its words
                raise Unusual
            into[key[0]] = value
            key[0] = _NO_KEY


_NO_KEY = object()


def plain(value: str, rules: Rules) -> Any:
    """A plain scalar as the safe constructor makes it from the tag the rules give it."""
    for tag, regexp in rules.get(value[:1], ()):
        if regexp.match(value):
            make = _MAKE.get(tag)
            if make is None:
                raise Unusual
            return make(value)
    return value


def _int(value: str) -> int:
    digits = value.lstrip("+-")
    if not digits.isdigit() or not digits.isascii():  # 0x1F, 0o17, 0b1, 1_000
        raise Unusual
    return int(value)


def _float(value: str) -> float:
    text = value.replace("_", "").lower()
    sign = -1 if text[0] == "-" else 1
    text = text[1:] if text[0] in "+-" else text
    if text == ".inf":
        return sign * SafeConstructor.inf_value
    if text == ".nan":
        return SafeConstructor.nan_value
    return sign * float(text)


def _timestamp(value: str) -> Any:
    match = timestamp_regexp.match(value)
    if match is None:
        raise Unusual
    return create_timestamp(**match.groupdict())


_MAKE: dict[str, Callable[[str], Any]] = {
    f"{_TAG}null": lambda value: None,
    f"{_TAG}bool": lambda value: SafeConstructor.bool_values[value.lower()],
    f"{_TAG}int": _int,
    f"{_TAG}float": _float,
    f"{_TAG}timestamp": _timestamp,
}
