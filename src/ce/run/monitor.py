"""Health of the running executors: branch tips, output and time; stops what stalls or overruns.

One thread for the whole batch. Each tick it looks at the executors' log sizes (a stat each);
every `poll_seconds` it reads all PRP branch tips with ONE `git for-each-ref`, however many PRPs
run. Progress (a new commit on the branch, new output in the log) is timed by when `ce` saw it,
on the monotonic clock, never by commit dates, which an agent controls. The age of the last
progress makes an executor HEALTHY, WARNING or STALLED.

A STALLED executor, or one past its deadline, has its whole process group stopped (SIGTERM,
grace, SIGKILL) on a short-lived thread; the worker, blocked in `wait()`, then reads
`Watch.stop_reason`. Every decision goes to the PRP's log and to the event stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ce import fsio, git, proc
from ce.config import MonitorConfig
from ce.core.durations import format_duration
from ce.core.events import Health, HealthChanged, Listener, Notice, NoticeLevel, StopKind
from ce.run.retry import Stopped

_TICK_SECONDS = 1.0  # log sizes and ages: checked more often than the branch tips


@dataclass(kw_only=True)
class Watch:
    prp_id: str
    ref: str
    child: proc.Supervised
    log_path: Path
    deadline: float  # monotonic
    timeout_minutes: float
    last_progress: float
    log_size: int = -1  # of the agent's own output: what `ce` appended is not progress
    ce_bytes: int = 0  # what `ce` appended to the log while watching
    tip: str | None = None
    health: Health = Health.HEALTHY
    stopped: Stopped | None = None  # set once the monitor decided to stop it


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
        """Start watching; the branch tip and log size now are the baseline, not progress."""
        if watch.tip is None:
            watch.tip = self._tips([watch.ref]).get(watch.ref)
        watch.log_size = _size(watch.log_path, watch.log_size)
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

    def note(self, prp_id: str, log_path: Path, level: NoticeLevel, message: str) -> None:
        """A decision about a PRP: one line in its log and a Notice in the event stream."""
        append_log(log_path, message)
        self.emit(Notice(level=level, prp=prp_id, message=message))

    def _loop(self) -> None:
        tick = min(_TICK_SECONDS, self.config.poll_seconds)
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
        size = _size(watch.log_path, watch.log_size + watch.ce_bytes) - watch.ce_bytes
        if size != watch.log_size:
            watch.log_size = size
            watch.last_progress = now

    def _poll_tips(self, watches: list[Watch], now: float) -> None:
        self.polls += 1
        tips = self._tips([w.ref for w in watches])
        for watch in watches:
            tip = tips.get(watch.ref)
            if tip is not None and tip != watch.tip:
                watch.tip = tip
                watch.last_progress = now
                self.on_tip(watch.prp_id, tip)

    def _tips(self, refs: list[str]) -> dict[str, str]:
        try:
            return self.repo.ref_tips(refs)
        except git.GitError:
            return {}  # a busy or locked repository: the next poll sees the tips

    def _judge(self, watch: Watch, now: float) -> None:
        if watch.stopped is not None or watch.child.returncode is not None:
            return  # being stopped, or exited: the worker takes it from here
        idle = now - watch.last_progress
        health = _health(idle, self.config)
        if health is not watch.health:
            watch.health = health
            self._log(watch, f"{health.value}: no progress for {format_duration(idle)}")
            self.emit(HealthChanged(prp=watch.prp_id, health=health, idle_seconds=idle))
        if now >= watch.deadline:
            budget = format_duration(watch.timeout_minutes * 60)
            self._stop_child(
                watch, Stopped(kind=StopKind.TIMED_OUT, message=f"timed out after {budget}")
            )
        elif health is Health.STALLED:
            stalled = f"stalled {format_duration(self.config.stalled_after)}"
            self._stop_child(watch, Stopped(kind=StopKind.STALLED, message=stalled))

    def _stop_child(self, watch: Watch, stopped: Stopped) -> None:
        watch.stopped = stopped
        reason = stopped.message
        grace = self.config.grace_seconds
        message = (
            f"{reason}: stopping process group {watch.child.pgid} "
            f"(SIGTERM, then SIGKILL after {format_duration(grace)})"
        )
        self._log(watch, message)
        self.emit(Notice(level=NoticeLevel.WARNING, prp=watch.prp_id, message=message))
        # Stopping waits out the grace period: never on the monitor's own thread.
        threading.Thread(
            target=watch.child.stop,
            args=(grace,),
            name=f"ce-stop-{watch.prp_id}",
            daemon=True,
        ).start()

    def _log(self, watch: Watch, message: str) -> None:
        watch.ce_bytes += append_log(watch.log_path, message)


def append_log(log_path: Path, message: str) -> int:
    """Append `[ce] HH:MM:SS message` to a PRP's log; the number of bytes written."""
    return fsio.append_log(log_path, f"[ce] {time.strftime('%H:%M:%S')} {message}\n")


def _size(path: Path, default: int) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return default


def _health(idle: float, config: MonitorConfig) -> Health:
    if idle < config.warning_after:
        return Health.HEALTHY
    if idle < config.stalled_after:
        return Health.WARNING
    return Health.STALLED
