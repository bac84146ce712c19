"""What the scripted model servers share (fake_anthropic: Messages API, fake_openai: Responses API).

A server listens on 127.0.0.1 (random port, one thread per connection) and plays a script: a
list of steps per conversation, chosen by a marker (for example a PRP id) found in the prompt the
CLI was started with. The step to play is the number of model turns the request already carries,
so a resumed session continues where the last launch stopped.

Tool inputs may contain `{cwd}`: the CLIs state their working directory in the request, and the
server fills it in, so a tool gets the absolute path the CLI insists on.

It is also the CLI's HTTP(S) proxy: `CONNECT` and any request for a foreign host is refused and
recorded in `outbound`, so a test can prove nothing left the machine; a request to this server
that its API does not answer (another path, a GET) is refused and recorded in `refused`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One model turn: some text, then tool calls (none: the agent ends its turn)."""

    text: str = ""
    tools: Sequence[ToolCall] = ()
    input_tokens: int = 1000  # cached ones included
    output_tokens: int = 200  # thinking not included
    cached_tokens: int = 0
    thinking_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class Failure:
    """An API error answer instead of a turn."""

    status: int
    error_type: str = "api_error"
    message: str = "scripted failure"
    headers: Mapping[str, str] = field(default_factory=dict)


Step = Reply | Failure


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


class ScriptedApi:
    """The server and the script; a subclass speaks one wire protocol (`handle`)."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], *, final_text: str = "Done.") -> None:
        self.scripts = dict(scripts)
        self.final_text = final_text
        self.seen: list[Seen] = []
        self.outbound: list[str] = []
        self.refused: list[str] = []  # local requests no protocol route answers
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ScriptedApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def proxy_env(self) -> dict[str, str]:
        return {
            "HTTP_PROXY": self.base_url,
            "HTTPS_PROXY": self.base_url,
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def requests_for(self, marker: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.marker == marker]

    def answer(self, path: str, body: dict[str, Any]) -> Step:
        marker = self._marker(self.prompt(body))
        step = self.step_of(body)
        with self._lock:
            self.seen.append(Seen(path=path, body=body, marker=marker, step=step))
        script = self.scripts.get(marker) if marker is not None else None
        if script is None or step >= len(script):
            return Reply(text=self.final_text)
        return _with_cwd(script[step], self.cwd(body))

    def _marker(self, prompt: str) -> str | None:
        # Longest first: "PRP-7.1.1" must not claim a conversation about "PRP-7.1.10".
        for marker in sorted(self.scripts, key=len, reverse=True):
            if marker in prompt:
                return marker
        return None

    # The protocol's part.

    def prompt(self, body: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def step_of(self, body: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def cwd(self, body: Mapping[str, Any]) -> str | None:
        raise NotImplementedError

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError


def texts(value: Any) -> Iterator[str]:
    """Every string in a request body, decoded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def _with_cwd(step: Step, cwd: str | None) -> Step:
    if not isinstance(step, Reply) or cwd is None:
        return step
    tools = [ToolCall(name=t.name, input=_fill(dict(t.input), cwd)) for t in step.tools]
    return replace(step, tools=tools)


def _fill(value: Any, cwd: str) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd)
    if isinstance(value, dict):
        return {k: _fill(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, cwd) for v in value]
    return value


class Http:
    """What a protocol may answer with."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

    def json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        handler = self._handler
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def sse(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        handler = self._handler
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()
        for event, data in events:
            # An empty event name: a bare `data:` line (what the Gemini API sends).
            head = f"event: {event}\n" if event else ""
            handler.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
            handler.wfile.flush()
        handler.close_connection = True

    def sse_data(self, chunks: Iterable[Mapping[str, Any]]) -> None:
        """Server-sent events without names, ended by `data: [DONE]` (OpenAI's Chat API)."""
        self.sse(("", chunk) for chunk in chunks)
        self._handler.wfile.write(b"data: [DONE]\n\n")
        self._handler.wfile.flush()


def _handler_for(api: ScriptedApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if not self._foreign():
                api.handle(Http(self), self.path, json.loads(raw or b"{}"))

        def do_GET(self) -> None:
            if not self._foreign():
                api.refused.append(f"{self.command} {self.path}")
                Http(self).json(404, {"type": "error", "error": {"type": "not_found_error"}})

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
            Http(self).json(403, {"error": "offline test server"})
            return True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
