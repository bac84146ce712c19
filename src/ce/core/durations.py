"""How ce writes a length of time: on the board, in the summary and reports, in reasons and
notices alike."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """`0.5s`, `45s`, `1m 05s`, `2h 03m`: two units at most, the smaller one zero-padded so
    that a column of them lines up."""
    whole = round(seconds)
    if whole < 60:
        # A grace period of half a second is not "0s".
        return f"{seconds:.1f}s" if 0 < seconds < 1 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
