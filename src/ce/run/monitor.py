"""Health of the running executors: branch tips, output and time; kills what stalls or overruns.

One thread for the whole batch. Each tick it looks at the executors' log sizes (a stat each);
every `poll_seconds` it reads all PRP branch tips with ONE `git for-each-ref`. Progress is timed
by when `ce` saw it, not by commit dates, which an agent controls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ce import git, proc
from ce.config import MonitorConfig
from ce.run.events import Health, HealthChanged, Listener


@dataclass(kw_only=True)
class Watch:
    prp_id: str
    ref: str
    child: proc.Child
    log_path: Path
    deadline: float  # monotonic
    timeout_minutes: float
    last_progress: float
    log_size: int = -1
    tip: str | None = None
    health: Health = Health.HEALTHY
    stop_reason: str | None = None  # set once the monitor decided to stop it


class Monitor:
    def __init__(
        self,
        repo: git.Repo,
        config: MonitorConfig,
        listener: Listener,
        on_tip: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.config = config
        self.emit = listener
        self.on_tip = on_tip  # (prp_id, new tip): the orchestrator reads new phases from it
        self.clock = clock
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_poll = 0.0
        self.polls = 0
        self._thread = threading.Thread(target=self._loop, name="ce-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def watch(self, watch: Watch) -> None:
        with self._lock:
            self._watches[watch.prp_id] = watch

    def unwatch(self, prp_id: str) -> Watch | None:
        with self._lock:
            return self._watches.pop(prp_id, None)

    def health_of(self, prp_id: str) -> tuple[Health, float] | None:
        with self._lock:
            watch = self._watches.get(prp_id)
            if watch is None:
                return None
            return watch.health, self.clock() - watch.last_progress

    def _loop(self) -> None:
        tick = min(1.0, self.config.poll_seconds)
        while not self._stop.wait(tick):
            self.tick()

    def tick(self) -> None:
        now = self.clock()
        with self._lock:
            watches = list(self._watches.values())
        if not watches:
            return
        for watch in watches:
            self._check_log(watch, now)
        if now - self._last_poll >= self.config.poll_seconds:
            self._last_poll = now
            self._poll_tips(watches, now)
        for watch in watches:
            self._judge(watch, now)

    def _check_log(self, watch: Watch, now: float) -> None:
        try:
            size = watch.log_path.stat().st_size
        except OSError:
            return
        if size != watch.log_size:
            watch.log_size = size
            watch.last_progress = now

    def _poll_tips(self, watches: list[Watch], now: float) -> None:
        self.polls += 1
        try:
            tips = self.repo.ref_tips([w.ref for w in watches])
        except git.GitError:
            return
        for watch in watches:
            tip = tips.get(watch.ref)
            if tip is not None and tip != watch.tip:
                if watch.tip is not None:
                    watch.last_progress = now
                watch.tip = tip
                self.on_tip(watch.prp_id, tip)

    def _judge(self, watch: Watch, now: float) -> None:
        if watch.stop_reason is not None:
            return
        idle = now - watch.last_progress
        health = _health(idle, self.config)
        if health is not watch.health:
            watch.health = health
            self.emit(HealthChanged(prp=watch.prp_id, health=health, idle_seconds=idle))
        if now >= watch.deadline:
            self._stop_child(watch, f"timed out after {_minutes(watch.timeout_minutes)}")
        elif health is Health.STALLED:
            self._stop_child(watch, f"stalled: no progress for {_minutes(idle / 60)}")

    def _stop_child(self, watch: Watch, reason: str) -> None:
        watch.stop_reason = reason
        # Stopping waits out the grace period: never on the monitor's own thread.
        threading.Thread(
            target=proc.stop_group,
            args=(watch.child, self.config.grace_seconds),
            name=f"ce-stop-{watch.prp_id}",
            daemon=True,
        ).start()


def _health(idle: float, config: MonitorConfig) -> Health:
    if idle < config.warning_after:
        return Health.HEALTHY
    if idle < config.stalled_after:
        return Health.WARNING
    return Health.STALLED


def _minutes(minutes: float) -> str:
    if minutes >= 1:
        return f"{minutes:.0f}m"
    return f"{minutes * 60:.0f}s"
