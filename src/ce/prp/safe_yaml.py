"""Safe YAML loading, with libyaml's C parser when ruamel.yaml.clib is installed.

The pure-Python loader costs about 1 ms per frontmatter (three quarters of a 10k-PRP dry run);
the C parser with the same constructor and resolver about a tenth of that, and the C parser's
events made into values directly (`ce.prp.event_yaml`) a third of that again. All build plain
data as ruamel's SafeConstructor and YAML 1.2 resolver do, so a document reads the same under
each; what the direct way does not build exactly as ruamel would goes to ruamel's constructor.
The pure loader stays the reference: whatever the C parser refuses is read again by it, so an
error is reported in its words, and a document the C parser cannot read safely (a `%` directive,
deep nesting, which libyaml's recursive composer answers with a crash) goes to it directly.
`CE_PURE_YAML=1` in the environment makes ce use the pure loader only.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.resolver import VersionedResolver

from ce.prp.event_yaml import Unusual, compiled, load_events
from ce.prp.line_yaml import NOT_READ, lines_load

try:
    from _ruamel_yaml import CParser
except ImportError:  # no wheel for this platform: the pure loader, about 10x slower
    CParser = None
if os.environ.get("CE_PURE_YAML"):
    CParser = None

# The C composer recurses on the C stack without a limit; the pure one stops at Python's limit
# (about 490 levels). A document is nested at most as deep as it has indicators, so the C
# parser reads only documents with few enough of them that the pure loader would read them too.
_C_MAX_INDICATORS = 300
# Said by `ce --version`: without the C parser (no ruamel.yaml.clib wheel for this platform, or
# CE_PURE_YAML set) every PRP is read about ten times slower, with the same results.
LOADER = "pure Python" if CParser is None else "libyaml (C)"


def safe_load(text: str) -> Any:
    """Plain data from one YAML document; a tag that would build an object is an error."""
    if CParser is not None and _c_can_read(text):
        read = lines_load(text, _EVENT_RULES)
        if read is not NOT_READ:
            return read
        try:
            return _c_load(text)
        except (YAMLError, UnicodeError):
            pass  # read again below, to report the problem as the reference loader does
    return pure_load(text)


def pure_load(text: str) -> Any:
    """The reference: ruamel's pure-Python safe loader."""
    return YAML(typ="safe", pure=True).load(text)


# Where libyaml (YAML 1.1) and ruamel's scanner disagree (found by tests/test_prp_yaml.py):
# tabs (ruamel refuses one after a plain scalar), a lone CR, a byte order mark past the start,
# the 1.1 line breaks NEL, LS and PS, and the indentation of block scalars (`|`, `>`).
_SCANNED_APART = re.compile("[\t\r\ufeff\x85\u2028\u2029|>]")


def _c_can_read(text: str) -> bool:
    if text.lstrip().startswith("%"):  # a directive (`%YAML 1.1`) the pure loader honours
        return False
    if _SCANNED_APART.search(text):
        return False
    # Counted one by one, not in generators: this runs for every PRP of a batch.
    count = text.count
    entries = count("- ") + count("-\t") + count("-\n") + text.endswith("-")
    indicators = count("[") + count("{") + count(":") + count("?") + entries
    return indicators <= _C_MAX_INDICATORS


if CParser is not None:

    class _CSafeLoader(CParser, SafeConstructor, VersionedResolver):  # type: ignore[misc]
        """libyaml's reader, scanner, parser and composer; ruamel's safe constructor and
        resolver, as `YAML(typ="safe")` uses them."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            self._parser = self._composer = self
            SafeConstructor.__init__(self, loader=self)
            VersionedResolver.__init__(self, loadumper=self)
            self.allow_duplicate_keys = False
            # The YAML 1.2 rules (no directive reaches this loader), built once rather than
            # per document and looked up directly rather than per scalar; copied, because
            # `resolve` extends the lists it is given.
            self._rules = {first: list(rules) for first, rules in _YAML_1_2_RULES.items()}

        @property
        def versioned_resolver(self) -> dict[str | None, list[Any]]:
            return self._rules

    _YAML_1_2_RULES: dict[str | None, list[Any]] = VersionedResolver(
        version=(1, 2)
    ).versioned_resolver
    _EVENT_RULES = compiled(_YAML_1_2_RULES)


def events_load(text: str) -> Any:
    """The document built from the C parser's events; `Unusual` when ruamel's constructor
    must build it."""
    parser = CParser(text)
    try:
        return load_events(parser, _EVENT_RULES)
    finally:
        parser.dispose()


def _c_load(text: str) -> Any:
    try:
        return events_load(text)
    except Unusual:
        pass  # built the full way below, as ruamel builds it
    loader = _CSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
