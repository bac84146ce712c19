"""A scripted stand-in for the Anthropic Messages API, to run the real Claude Code CLI offline.

The server listens on 127.0.0.1 (random port, one thread per connection) and answers
`POST /v1/messages` in both forms the API has: server-sent events when the request says
`"stream": true`, one JSON message otherwise. What it answers comes from a script: a list of
steps per conversation, chosen by a marker (for example a PRP id) found in the conversation's
first user message. The step to play is the number of assistant turns the request already
carries, so a resumed session (`claude --resume`) continues where the last launch stopped.

Tool inputs may contain `{cwd}`: the CLI states its working directory in the request
("Primary working directory: ..."), and the server fills it in, so `Write` gets the absolute
path the CLI insists on.

It also serves as the CLI's HTTP(S) proxy: `CONNECT` and any other request for a foreign host
is refused and recorded in `outbound`, so a test can prove nothing left the machine.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_CWD = re.compile(r"Primary working directory: (\S+)")


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One assistant turn: some text, then tool calls (none: the agent ends its turn)."""

    text: str = ""
    tools: Sequence[ToolCall] = ()
    input_tokens: int = 1000
    output_tokens: int = 200


@dataclass(frozen=True, kw_only=True)
class Failure:
    """An API error answer instead of a turn."""

    status: int
    error_type: str = "api_error"
    message: str = "scripted failure"
    headers: Mapping[str, str] = field(default_factory=dict)


Step = Reply | Failure


def write(path: str, content: str) -> ToolCall:
    """The Write tool; a relative path is taken from the agent's working directory."""
    absolute = path if path.startswith("/") else "{cwd}/" + path
    return ToolCall(name="Write", input={"file_path": absolute, "content": content})


def bash(command: str) -> ToolCall:
    return ToolCall(name="Bash", input={"command": command, "description": "scripted step"})


def commit(message: str) -> tuple[ToolCall, ToolCall]:
    """`git add -A` then `git commit`, as two calls the way an agent usually does it."""
    return bash("git add -A"), bash(f"git commit -q -m '{message}'")


def rate_limited(retry_after: int = 37) -> Failure:
    return Failure(
        status=429,
        error_type="rate_limit_error",
        message="Number of request tokens has exceeded your per-minute rate limit",
        headers={"retry-after": str(retry_after)},
    )


@dataclass(frozen=True, kw_only=True)
class Seen:
    """One request the server answered."""

    path: str
    body: dict[str, Any]
    marker: str | None
    step: int

    @property
    def text(self) -> str:
        return json.dumps(self.body)


class FakeAnthropic:
    """`with FakeAnthropic({"PRP-1.1.1": [Reply(...), ...]}) as api:` then point the CLI at
    `api.base_url`. A conversation with no marker gets a one-line text answer."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], *, final_text: str = "Done.") -> None:
        self.scripts = dict(scripts)
        self.final_text = final_text
        self.seen: list[Seen] = []
        self.outbound: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def env(self, home: Path) -> dict[str, str]:
        """What the CLI needs to talk to this server and nothing else, with its state in `home`."""
        return {
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",  # a scripted failure fails now, not after backoff
            "HTTP_PROXY": self.base_url,
            "HTTPS_PROXY": self.base_url,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def requests_for(self, marker: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.marker == marker]

    def answer(self, path: str, body: dict[str, Any]) -> Step:
        marker = self._marker(body)
        step = _assistant_turns(body)
        with self._lock:
            self.seen.append(Seen(path=path, body=body, marker=marker, step=step))
        script = self.scripts.get(marker) if marker is not None else None
        if script is None or step >= len(script):
            return Reply(text=self.final_text)
        return _with_cwd(script[step], _CWD.search("\n".join(_texts(body))))

    def _marker(self, body: dict[str, Any]) -> str | None:
        first = _prompt(body)
        # Longest first: "PRP-7.1.1" must not claim a conversation about "PRP-7.1.10".
        for marker in sorted(self.scripts, key=len, reverse=True):
            if marker in first:
                return marker
        return None


def _prompt(body: Mapping[str, Any]) -> str:
    """The prompt the CLI was started with: the last text block of the first user message
    (the blocks before it are the CLI's reminders, which quote git history: other PRP ids)."""
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
        return str(texts[-1]) if texts else ""
    return ""


def _texts(value: Any) -> Iterator[str]:
    """Every string in a request body, decoded (the CLI's environment text is one of them)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _assistant_turns(body: Mapping[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def _with_cwd(step: Step, match: re.Match[str] | None) -> Step:
    if not isinstance(step, Reply) or match is None:
        return step
    cwd = match.group(1)
    tools = [
        ToolCall(name=t.name, input=_fill(dict(t.input), cwd)) for t in step.tools
    ]
    return Reply(
        text=step.text,
        tools=tools,
        input_tokens=step.input_tokens,
        output_tokens=step.output_tokens,
    )


def _fill(value: Any, cwd: str) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd)
    if isinstance(value, dict):
        return {k: _fill(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, cwd) for v in value]
    return value


def _message(reply: Reply, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tool in reply.tools:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": tool.name,
                "input": dict(tool.input),
            }
        )
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if reply.tools else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def _sse_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = dict(message["usage"], output_tokens=1)
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        opening: dict[str, Any]
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opening = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_start", {
            "type": "content_block_start",
            "index": index,
            "content_block": opening,
        }
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    }
    yield "message_stop", {"type": "message_stop"}


def _handler_for(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self._foreign():
                return
            if not self.path.startswith("/v1/messages"):
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}})
                return
            body = json.loads(raw or b"{}")
            if self.path.startswith("/v1/messages/count_tokens"):
                self._json(200, {"input_tokens": len(raw) // 4})
                return
            step = api.answer(self.path, body)
            if isinstance(step, Failure):
                error = {"type": step.error_type, "message": step.message}
                self._json(step.status, {"type": "error", "error": error}, step.headers)
            elif body.get("stream"):
                self._stream(_message(step, str(body.get("model", "fake"))))
            else:
                self._json(200, _message(step, str(body.get("model", "fake"))))

        def do_GET(self) -> None:
            if not self._foreign():
                self._json(404, {"type": "error", "error": {"type": "not_found_error"}})

        do_HEAD = do_GET

        def do_CONNECT(self) -> None:
            api.outbound.append(f"CONNECT {self.path}")
            self.send_response(403)
            self.send_header("content-length", "0")
            self.end_headers()

        def _foreign(self) -> bool:
            # A proxied plain-HTTP request names its absolute URL: not for us.
            if self.path.startswith("/"):
                return False
            api.outbound.append(f"{self.command} {self.path}")
            self._json(403, {"error": "offline test server"})
            return True

        def _json(
            self, status: int, payload: object, headers: Mapping[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, message: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            for event, data in _sse_events(message):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

