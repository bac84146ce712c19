"""Secret values of the environment, masked in everything `ce` writes.

A variable is secret when its name contains KEY, TOKEN, SECRET or PASSWORD (any case). Its value
is replaced by `***` in the per-PRP logs, the checkpoint, the journal, the reports and the
progress output. Values shorter than `MIN_LENGTH` are left alone: masking "1" or "true" would
mask half of every log. A multi-line value (a PEM key) is masked line by line, since logs are
read line by line. Agents still get their environment unchanged: only what `ce` writes is masked.

Structured data is masked before it is serialized (`mask_data`), never the JSON or HTML text
after: escaping would change how a value with quotes or non-ASCII characters is spelled.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar

MASK = "***"
MIN_LENGTH = 6
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
# Names that match and hold no secret: the key half of git's `-c` pairs (its value half, named
# GIT_CONFIG_VALUE_<n>, is not masked either: nothing says which of them are secret).
NOT_SECRET = re.compile(r"GIT_CONFIG_KEY_\d+")

T = TypeVar("T")


class Masker:
    """Replaces a fixed set of secret values in text, bytes and nested data."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values  # longest first: a secret containing another is masked whole
        self._text = re.compile("|".join(map(re.escape, values))) if values else None
        encoded = [value.encode("utf-8") for value in values]
        self._bytes = re.compile(b"|".join(map(re.escape, encoded))) if values else None

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        return text if self._text is None else self._text.sub(MASK, text)

    def bytes(self, data: bytes) -> bytes:
        return data if self._bytes is None else self._bytes.sub(MASK.encode(), data)

    def data(self, data: T) -> T:
        """`data` with every string in it masked: dicts (keys too), lists, tuples, dataclasses."""
        return data if not self.values else self._data(data)

    def _data(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {self._data(key): self._data(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self._data(item) for item in data]
        if isinstance(data, tuple):
            items = [self._data(item) for item in data]
            return type(data)(*items) if hasattr(data, "_fields") else tuple(items)
        if dataclasses.is_dataclass(data) and not isinstance(data, type):
            return self._dataclass(data)
        return data  # numbers, enums, None, paths (ce's own, never an agent's)

    def _dataclass(self, data: Any) -> Any:
        changes = {}
        for field in dataclasses.fields(data):
            if field.init:
                value = getattr(data, field.name)
                masked = self._data(value)
                if masked is not value:
                    changes[field.name] = masked
        return dataclasses.replace(data, **changes) if changes else data


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values to mask, longest first (then alphabetically, so the order is stable)."""
    found = {
        line.strip("\r")
        for name, value in environ.items()
        if _secret_name(name)
        for line in value.split("\n")
    }
    kept = (value for value in found if len(value.strip()) >= MIN_LENGTH)
    return tuple(sorted(kept, key=lambda value: (-len(value), value)))


@functools.lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    """Whether a variable of this name is secret (asked for every variable at every write)."""
    return SECRET_NAME.search(name) is not None and not NOT_SECRET.fullmatch(name)


@functools.lru_cache(maxsize=8)
def _masker(values: tuple[str, ...]) -> Masker:
    return Masker(values)


def masker(environ: Mapping[str, str] | None = None) -> Masker:
    """The masker for `environ` (default: ours, read now: tests and users may change it)."""
    return _masker(secret_values(os.environ if environ is None else environ))


def mask(text: str) -> str:
    return masker().text(text)


def mask_data(data: T) -> T:
    return masker().data(data)


def masked_json(data: object, *, sort_keys: bool = False) -> str:
    """`data` as one line of masked JSON (the checkpoint, the journal, a review's file)."""
    # No indent: the C encoder is 10x faster, and the checkpoint is rewritten at every step.
    return json.dumps(mask_data(data), sort_keys=sort_keys) + "\n"


class LogFilter:
    """Masks a byte stream chunk by chunk, for a child's output on its way to its log.

    A secret may arrive split over two chunks, so what ends a chunk and may be the start of a
    secret (after masking) is held back until more data (or the end) shows what it belongs to;
    nothing else is. A line that ends with its newline is never held (no secret holds one: they
    are masked line by line), so ce's own lines in the log fall between the child's, not in
    the middle of one.
    """

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self._held = b""
        self._starts = tuple(value.encode("utf-8") for value in masker.values)

    def feed(self, data: bytes) -> bytes:
        masked = self.masker.bytes(self._held + data)
        keep = self._pending(masked)
        self._held = masked[len(masked) - keep :]
        return masked[: len(masked) - keep]

    def _pending(self, masked: bytes) -> int:
        """How many of the last bytes of `masked` may begin a secret still to arrive."""
        longest = 0
        for secret in self._starts:
            for length in range(min(len(secret) - 1, len(masked)), longest, -1):
                if masked.endswith(secret[:length]):
                    longest = length
                    break
        return longest

    def end(self) -> bytes:
        held, self._held = self._held, b""
        return self.masker.bytes(held)


def log_filter(environ: Mapping[str, str]) -> LogFilter | None:
    """A filter for a child started with `environ`; None when it holds no secret."""
    found = masker(environ)
    return LogFilter(found) if found else None
