"""`[notify]`: the event as data, then sent for real (a command's stdin, a POST to a local
HTTP server on 127.0.0.1), never blocking or failing the batch."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchkit import Spec, conflicting_pair, make_batch_repo, write
from ce.core.events import BudgetReached, Health, HealthChanged, Notice, NoticeLevel
from ce.run.notify import BatchFacts, Concerned, event_payload, payload
from clikit import ce

FACTS = BatchFacts(
    batch_id="7", resume_command="ce batch-exe --batch 7 --resume", report="/r/batch-7.html"
)


def test_the_payload_names_the_batch_the_prps_the_reason_and_the_resume_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CE_TEST_API_KEY", "sk-very-secret-1234")
    prps = [Concerned(id="PRP-7.1.2", state="failed", error="401 for sk-very-secret-1234")]

    data = payload("failed", FACTS, status="FAILED", prps=prps, reason="1 PRP(s) did not merge")

    assert data == {
        "event": "failed",
        "batch_id": "7",
        "status": "FAILED",
        "prps": [{"id": "PRP-7.1.2", "state": "failed", "error": "401 for ***"}],
        "reason": "1 PRP(s) did not merge",
        "resume_command": "ce batch-exe --batch 7 --resume",
        "report": "/r/batch-7.html",
    }


def test_a_stall_and_the_budget_notify_while_other_events_do_not() -> None:
    stalled = event_payload(
        HealthChanged(prp="PRP-7.1.1", health=Health.STALLED, idle_seconds=600.4), FACTS
    )
    budget = event_payload(BudgetReached(budget_usd=5, spent_usd=5.25), FACTS)
    warning = HealthChanged(prp="PRP-7.1.1", health=Health.WARNING, idle_seconds=300)

    assert stalled is not None and budget is not None
    assert (stalled["event"], stalled["prps"]) == ("stalled", [{"id": "PRP-7.1.1", **RUNNING}])
    assert stalled["reason"] == "no progress for 600s: stopping its agent"
    assert budget["event"] == "budget"
    assert budget["reason"] == "batch budget $5.00 reached ($5.25 spent): no new PRP starts"
    assert event_payload(warning, FACTS) is None
    assert event_payload(Notice(level=NoticeLevel.ERROR, message="x"), FACTS) is None


RUNNING = {"state": "running", "error": None}


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[dict[str, object]]
    answer = 200
    delay = 0.0

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        time.sleep(self.delay)
        self.send_response(self.answer)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(answer: int = 200, delay: float = 0.0) -> Iterator[tuple[str, list[dict[str, object]]]]:
    bodies: list[dict[str, object]] = []
    handler = type("Handler", (Receiver,), {"bodies": bodies, "answer": answer, "delay": delay})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    yield from serve()


# Writes its stdin to the file named by its argument: a real child, no shell.
RECORDER = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())"


def config(notify: str) -> str:
    return (
        'executor = "script"\n[validate]\ndrift_threshold = 100\n[monitor]\npoll_seconds = 0.2\n'
        f"[notify]\n{notify}"
    )


def test_a_batch_paused_on_a_conflict_notifies_the_command_and_the_webhook(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    webhook: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = webhook
    sent = tmp_path / "sent.json"
    (tmp_path / "recorder.py").write_text(RECORDER)
    notify = f'command = "{sys.executable} {tmp_path / "recorder.py"} {sent}"\nwebhook = "{url}"\n'
    repo = make_batch_repo(tmp_path / "repo", conflicting_pair(), config=config(notify))

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

    assert result.code == 1
    assert result.json()["status"] == "PAUSED"
    by_command = json.loads(sent.read_text())
    assert received == [by_command]  # one event, the same JSON both ways
    assert by_command["event"] == "paused"
    assert by_command["status"] == "PAUSED"
    assert by_command["batch_id"] == "7"
    assert [p["id"] for p in by_command["prps"]] == ["PRP-7.1.2"]
    assert by_command["prps"][0]["state"] == "conflict"
    assert by_command["reason"] == result.json()["pause_reason"]
    assert by_command["resume_command"].endswith("ce batch-exe --batch 7 --resume")
    assert by_command["report"] == str(repo / ".ce/tmp/batch-7-report.html")
    assert result.json()["warnings"] == []
    print(json.dumps(by_command, indent=2))  # the JSON as sent (pytest -s shows it)


def test_an_undelivered_notification_is_a_warning_and_never_blocks_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="One", phases=[[write("1.txt", "1")]], files=["1.txt"])]
    (tmp_path / "fails.py").write_text("import sys; sys.stdin.read(); sys.exit('no display')")
    for url, _ in serve(delay=30):  # a receiver that answers far too late
        notify = (
            f'command = "{sys.executable} {tmp_path / "fails.py"}"\n'
            f'webhook = "{url}"\non = ["finished"]\ntimeout_seconds = 1\n'
        )
        repo = make_batch_repo(tmp_path / "repo", specs, config=config(notify))
        started = time.monotonic()

        result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7", "--json")

        assert time.monotonic() - started < 25  # bounded by the timeout, not the receiver
    assert result.code == 0
    warnings = result.json()["warnings"]
    assert len(warnings) == 2, warnings
    assert any("exited 1: no display" in w for w in warnings)
    assert any("timed out" in w for w in warnings)
    log = (repo / ".ce/tmp/logs/notify.log").read_text()
    assert log.count("notification 'finished' not delivered") == 2


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('webhook = "file:///x"', ("notify.webhook", "http://")),
        ('command = "notify-send \'ce"', ("notify.command", "quotation")),
        ('on = ["paused", "merged"]', ("notify.on", "'finished'")),
    ],
)
def test_a_wrong_notify_table_is_refused_before_anything_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    line: str,
    said: tuple[str, str],
) -> None:
    specs = [Spec(id="PRP-7.1.1", title="One", phases=[[write("1.txt", "1")]], files=["1.txt"])]
    repo = make_batch_repo(tmp_path / "repo", specs, config=config(line + "\n"))

    result = ce(repo, monkeypatch, capsys, "batch-exe", "--batch", "7")

    assert result.code == 2
    assert all(words in result.err for words in said), result.err
    assert "Traceback" not in result.err
    assert not (repo / ".ce/tmp/batch-execution-7.json").exists()
