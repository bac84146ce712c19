"""`[notify]`: tell someone when the batch needs them (paused, failed, finished, stalled, budget).

The event is one JSON object, built by a pure function (`payload`) and masked with `ce.secrets`.
It goes on the stdin of `command` (split like shlex, no shell) and/or is POSTed to `webhook`,
each in a background thread with a timeout: a notification never blocks or fails the batch.
What failed is appended to `.ce/tmp/logs/notify.log` and kept for the summary's warnings.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ce import fsio, proc
from ce.config import NotifyConfig
from ce.core.events import BudgetReached, Event, Health, HealthChanged, Listener
from ce.core.outcome import BatchStatus, Summary
from ce.secrets import mask_data

_KIND_OF_STATUS = {
    BatchStatus.PAUSED: "paused",
    BatchStatus.FAILED: "failed",
    BatchStatus.COMPLETED: "finished",
}


@dataclass(frozen=True, kw_only=True)
class Concerned:
    id: str
    state: str
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class BatchFacts:
    """What every notification of one batch says besides the event itself."""

    batch_id: str
    resume_command: str
    report: str


def payload(
    event: str,
    facts: BatchFacts,
    *,
    status: str,
    prps: Sequence[Concerned],
    reason: str | None,
) -> dict[str, Any]:
    """The JSON sent, secrets masked (an error may quote an agent's output)."""
    data = {
        "event": event,
        "batch_id": facts.batch_id,
        "status": status,
        "prps": [{"id": p.id, "state": p.state, "error": p.error} for p in prps],
        "reason": reason,
        "resume_command": facts.resume_command,
        "report": facts.report,
    }
    return mask_data(data)


def final_payload(summary: Summary, facts: BatchFacts) -> dict[str, Any] | None:
    """The notification of how the batch ended; None for an end nobody is told of (Ctrl-C)."""
    event = _KIND_OF_STATUS.get(summary.status)
    if event is None:
        return None
    if summary.status is BatchStatus.COMPLETED:
        concerned = [p for p in summary.prps if p.state.ok]
    else:
        concerned = [p for p in summary.prps if p.state.finished and not p.state.ok]
    if summary.reports is not None:  # where they were written
        facts = replace(facts, report=str(summary.reports.html))
    guidance = summary.guidance
    reason = guidance.pause_reason or guidance.budget_reason
    if reason is None and concerned and event == "failed":
        reason = f"{len(concerned)} PRP(s) did not merge"
    return payload(
        event,
        facts,
        status=summary.status.value,
        prps=[Concerned(id=p.id, state=p.state.value, error=p.error) for p in concerned],
        reason=reason,
    )


def event_payload(event: Event, facts: BatchFacts) -> dict[str, Any] | None:
    """The notification of an engine event while the batch runs (stalled, budget), if any."""
    if isinstance(event, HealthChanged) and event.health is Health.STALLED:
        reason = f"no progress for {event.idle_seconds:.0f}s: stopping its agent"
        prps = [Concerned(id=event.prp, state="running")]
        return payload("stalled", facts, status="IN_PROGRESS", prps=prps, reason=reason)
    if isinstance(event, BudgetReached):
        reason = (
            f"batch budget ${event.budget_usd:.2f} reached (${event.spent_usd:.2f} spent): "
            "no new PRP starts"
        )
        return payload("budget", facts, status="IN_PROGRESS", prps=[], reason=reason)
    return None


class Notifier:
    """Sends each notification `config.on` asks for, in the background; records failures."""

    def __init__(self, config: NotifyConfig, facts: BatchFacts, log: Path) -> None:
        self.config, self.facts, self.log = config, facts, log
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def enabled(self) -> bool:
        return bool(self.config.command.strip() or self.config.webhook.strip())

    def listening(self, listener: Listener) -> Listener:
        """`listener`, with the events that notify sent on as well."""

        def both(event: Event) -> None:
            listener(event)
            data = event_payload(event, self.facts)
            if data is not None:
                self.send(data)

        return both if self.enabled else listener

    def send(self, data: dict[str, Any]) -> None:
        if not self.enabled or data["event"] not in self.config.on:
            return
        body = json.dumps(data, indent=2) + "\n"
        for target, sender in (
            (self.config.command, self._run_command),
            (self.config.webhook, self._post),
        ):
            if target.strip():
                thread = threading.Thread(
                    target=self._guarded,
                    args=(sender, body, data["event"]),
                    name="ce-notify",
                    daemon=True,  # a receiver that never answers cannot keep ce alive
                )
                with self._lock:
                    self._threads.append(thread)
                thread.start()

    def wait(self) -> list[str]:
        """Wait for what is being sent (each bounded by the timeout); the failures, in words."""
        deadline = time.monotonic() + self.config.timeout_seconds + 1
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return list(self.failures)

    def _guarded(self, sender: Any, body: str, event: str) -> None:
        try:
            what = sender(body)
        except (OSError, ValueError, proc.ProcessError) as exc:  # URLError is an OSError
            self._failed(f"notification {event!r} not delivered: {exc}")
            return
        fsio.append_log(self.log, f"[ce] notified {event!r}: {what}\n")

    def _run_command(self, body: str) -> str:
        argv = shlex.split(self.config.command)
        done = proc.run(argv, input=body, timeout=self.config.timeout_seconds, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise OSError(f"`{self.config.command}` exited {done.returncode}: {output[-500:]}")
        return f"`{self.config.command}` exited 0"

    def _post(self, body: str) -> str:
        import urllib.request  # only for a webhook: 20 ms of every start otherwise

        # The config allows only http:// and https:// (NotifyConfig._http_url).
        request = urllib.request.Request(  # noqa: S310
            self.config.webhook,
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        timeout = self.config.timeout_seconds
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return f"the webhook answered {answer.status}"  # its URL may hold a token

    def _failed(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)
        fsio.append_log(self.log, f"[ce] {message}\n")
