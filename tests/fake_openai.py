"""A scripted stand-in for the OpenAI Responses API, to run the real Codex CLI offline.

Codex talks to a custom provider (`model_providers.<name>` in `$CODEX_HOME/config.toml`, see
`codex_config`) with `POST /v1/responses` and `"stream": true`; the answer is server-sent events:
`response.created`, one `response.output_item.done` per item (an assistant message or an
`exec_command` function call), then `response.completed` with the usage. The conversation's
marker is looked for in the user's prompt; its step is the number of model turns already in
`input` (a run of model items between tool outputs and user messages is one turn). Codex states
its working directory in `<cwd>...</cwd>`. See fake_api for the script and the proxy.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fake_api import Failure, Http, Reply, ScriptedApi, Step, ToolCall, rate_limited, texts

__all__ = ["Failure", "FakeOpenAI", "Reply", "Step", "ToolCall", "rate_limited", "shell"]

_CWD = re.compile(r"<cwd>([^<]+)</cwd>")
_MODEL_ITEMS = frozenset({"message:assistant", "function_call", "reasoning", "custom_tool_call"})
API_KEY_VARIABLE = "CE_TEST_OPENAI_KEY"


def shell(command: str) -> ToolCall:
    """Codex's `exec_command` tool, run in the agent's working directory."""
    return ToolCall(name="exec_command", input={"cmd": command, "workdir": "{cwd}"})


class FakeOpenAI(ScriptedApi):
    """`with FakeOpenAI({"PRP-1.1.1": [Reply(...), ...]}) as api:` then run Codex with
    `api.env(home)` after `api.codex_config(home)`."""

    def __enter__(self) -> FakeOpenAI:
        super().__enter__()
        return self

    def codex_config(self, home: Path) -> Path:
        """`$CODEX_HOME/config.toml` naming this server as the model provider."""
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        config = codex_home / "config.toml"
        config.write_text(
            'model_provider = "ce-fake"\n'
            "check_for_update_on_startup = false\n"
            "[analytics]\nenabled = false\n"
            "[model_providers.ce-fake]\n"
            'name = "ce fake"\n'
            f'base_url = "{self.base_url}/v1"\n'
            f'env_key = "{API_KEY_VARIABLE}"\n'
            'wire_api = "responses"\n'
            "request_max_retries = 0\n"
            "stream_max_retries = 0\n",
            encoding="utf-8",
        )
        return config

    def env(self, home: Path) -> dict[str, str]:
        return {
            "HOME": str(home),
            "CODEX_HOME": str(home / ".codex"),
            API_KEY_VARIABLE: "sk-fake-key-for-tests",
            **self.proxy_env(),
        }

    def prompt(self, body: Mapping[str, Any]) -> str:
        """The first user message that is not context the CLI added (those start with `<`)."""
        for item in body.get("input", []):
            if item.get("type") == "message" and item.get("role") == "user":
                text = "\n".join(str(part.get("text", "")) for part in item.get("content", []))
                if not text.lstrip().startswith("<"):
                    return text
        return ""

    def step_of(self, body: Mapping[str, Any]) -> int:
        turns, in_turn = 0, False
        for item in body.get("input", []):
            kind = str(item.get("type"))
            if kind == "message":
                kind = f"message:{item.get('role')}"
            is_model = kind in _MODEL_ITEMS
            turns += is_model and not in_turn
            in_turn = is_model
        return turns

    def cwd(self, body: Mapping[str, Any]) -> str | None:
        match = _CWD.search("\n".join(texts(body.get("input"))))
        return match.group(1).strip() if match else None

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        reply = answer_or_error(self, http, path, "/v1/responses", body)
        if reply is not None:
            http.sse(_events(reply, str(body.get("model", "fake"))))


def answer_or_error(
    api: ScriptedApi, http: Http, path: str, route: str, body: dict[str, Any]
) -> Reply | None:
    """The scripted reply for a request to `route`; None once an OpenAI-style error (no such
    route, a scripted failure) has been sent instead."""
    if path.rstrip("/") != route:
        api.refused.append(f"POST {path}")
        http.json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
        return None
    step = api.answer(path, body)
    if isinstance(step, Failure):
        send_error(http, step)
        return None
    return step


def send_error(http: Http, failure: Failure) -> None:
    error = {"message": failure.message, "type": failure.error_type, "code": failure.error_type}
    http.json(failure.status, {"error": error}, failure.headers)


def _items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    for tool in reply.tools:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": f"call_{uuid.uuid4().hex[:24]}",
                "name": tool.name,
                "arguments": json.dumps(dict(tool.input)),
                "status": "completed",
            }
        )
    return items


def _events(reply: Reply, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    response_id = f"resp_{uuid.uuid4().hex[:24]}"
    shell_ = {"id": response_id, "object": "response", "model": model, "status": "in_progress"}
    yield "response.created", {"type": "response.created", "response": shell_}
    items = _items(reply)
    for index, item in enumerate(items):
        yield (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "output_index": index,
                "item": item,
            },
        )
    usage = {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }
    done = {**shell_, "status": "completed", "output": items, "usage": usage}
    yield "response.completed", {"type": "response.completed", "response": done}
