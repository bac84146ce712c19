"""A scripted stand-in for the Anthropic Messages API, to run the real Claude Code CLI offline.

`POST /v1/messages` is answered in both forms the API has: server-sent events when the request
says `"stream": true`, one JSON message otherwise. The conversation's marker is looked for in the
prompt the CLI was started with; its step is the number of assistant turns in `messages`. The
CLI states its working directory ("Primary working directory: ...") in the request. See fake_api
for the script and the proxy.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fake_api import Failure, Http, Reply, ScriptedApi, Step, ToolCall, rate_limited, texts

__all__ = [
    "Failure",
    "FakeAnthropic",
    "Reply",
    "Step",
    "ToolCall",
    "bash",
    "commit",
    "rate_limited",
    "write",
]

_CWD = re.compile(r"Primary working directory: (\S+)")


def write(path: str, content: str) -> ToolCall:
    """The Write tool; a relative path is taken from the agent's working directory."""
    absolute = path if path.startswith("/") else "{cwd}/" + path
    return ToolCall(name="Write", input={"file_path": absolute, "content": content})


def bash(command: str) -> ToolCall:
    return ToolCall(name="Bash", input={"command": command, "description": "scripted step"})


def commit(message: str) -> tuple[ToolCall, ToolCall]:
    """`git add -A` then `git commit`, as two calls the way an agent usually does it."""
    return bash("git add -A"), bash(f"git commit -q -m '{message}'")


class FakeAnthropic(ScriptedApi):
    """`with FakeAnthropic({"PRP-1.1.1": [Reply(...), ...]}) as api:` then run the CLI with
    `api.env(home)`. A conversation with no marker gets a one-line text answer."""

    def __enter__(self) -> FakeAnthropic:
        super().__enter__()
        return self

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
            **self.proxy_env(),
        }

    def prompt(self, body: Mapping[str, Any]) -> str:
        """The last text block of the first user message (the blocks before it are the CLI's
        reminders, which quote the git history: other PRP ids)."""
        for message in body.get("messages", []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            blocks = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
            return str(blocks[-1]) if blocks else ""
        return ""

    def step_of(self, body: Mapping[str, Any]) -> int:
        return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")

    def cwd(self, body: Mapping[str, Any]) -> str | None:
        match = _CWD.search("\n".join(texts(body)))
        return match.group(1) if match else None

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        if path.startswith("/v1/messages/count_tokens"):
            http.json(200, {"input_tokens": len(json.dumps(body)) // 4})
        elif not path.startswith("/v1/messages"):
            http.json(404, {"type": "error", "error": {"type": "not_found_error"}})
        else:
            self._messages(http, path, body)

    def _messages(self, http: Http, path: str, body: dict[str, Any]) -> None:
        step = self.answer(path, body)
        if isinstance(step, Failure):
            error = {"type": step.error_type, "message": step.message}
            http.json(step.status, {"type": "error", "error": error}, step.headers)
            return
        message = _message(step, str(body.get("model", "fake")))
        if body.get("stream"):
            http.sse(_sse_events(message))
        else:
            http.json(200, message)


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
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": opening,
            },
        )
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}
