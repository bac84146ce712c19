"""The launch gate: every executor launch of a batch passes through one gate.

Agent CLIs share one account's rate limits. A burst of sessions starting at once is what trips
them, and once one agent is told to wait, starting others only earns more refusals. So launches
are spaced by `stagger` seconds, and a rate-limit answer holds every new launch until the reset
time the agent reported; the rate-limited PRP then goes again from its checkpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ce.config import Config
from ce.core.vocab import AGENT_PRESETS

# Agent presets start a session with an API each: a few seconds apart keeps a batch's start
# from looking like a burst. The script and command executors start at once.
AGENT_STAGGER_SECONDS = 2.0


def stagger_seconds(config: Config) -> float:
    """`[monitor] stagger_seconds`, else the executor's default."""
    if config.monitor.stagger_seconds is not None:
        return config.monitor.stagger_seconds
    return AGENT_STAGGER_SECONDS if config.executor in AGENT_PRESETS else 0.0


class LaunchGate:
    """Thread-safe: workers wait for their turn; a rate limit holds everyone."""

    def __init__(self, stagger: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stagger = stagger
        self.clock = clock
        self._ready = threading.Condition()
        self._held_until = 0.0  # monotonic
        self._last_launch: float | None = None
        self._closed = False

    def hold(self, seconds: float) -> float:
        """No launch before now + seconds (a longer hold already set stays); the end, monotonic."""
        with self._ready:
            self._held_until = max(self._held_until, self.clock() + seconds)
            self._ready.notify_all()
            return self._held_until

    def held_for(self) -> float:
        """Seconds until the next launch may start (0: now)."""
        with self._ready:
            return max(self._next_turn() - self.clock(), 0.0)

    def wait_turn(self) -> float:
        """Block until this caller may launch, and take the turn; the seconds waited.

        Returns at once when the gate is closed (the batch is stopping): the caller checks.
        """
        started = self.clock()
        with self._ready:
            while not self._closed:
                now = self.clock()
                turn = self._next_turn()
                if now >= turn:
                    self._last_launch = now
                    break
                self._ready.wait(turn - now)
        return self.clock() - started

    def close(self) -> None:
        """Release every waiter: the batch is stopping and nothing new launches."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _next_turn(self) -> float:
        spaced = self._last_launch + self.stagger if self._last_launch is not None else 0.0
        return max(self._held_until, spaced)
