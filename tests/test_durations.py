"""One duration format for the board, the summary, the reports, reasons and notices."""

from __future__ import annotations

import pytest

from ce.core.durations import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "0.5s"),
        (0, "0s"),
        (2, "2s"),
        (59.4, "59s"),
        (60, "1m 00s"),
        (89.4, "1m 29s"),
        (90, "1m 30s"),
        (206, "3m 26s"),
        (600.3, "10m 00s"),
        (3600, "1h 00m"),
        (7385, "2h 03m"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
