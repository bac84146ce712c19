"""A scripted stand-in for the OpenAI Chat Completions API, to run the real aider offline.

Aider (through litellm) posts to `<--openai-api-base>/chat/completions`, streaming by default
(`--no-stream`: one JSON answer); a stream is `data:` chunks with the text as `delta.content`,
a chunk with `finish_reason`, one with `usage` if `stream_options` asks for it, then
`data: [DONE]`. Aider holds no tools: a
reply is text in its edit format (`search_replace`, `whole_file`), which aider applies itself.

Aider starts a new chat for each phase; the task is the first user message that holds a
marker ("Implement phase 2 of PRP-1.1.1" tells the phases apart), and the step is the number
of the model's answers after it (aider sends a failed edit back in a new user message). See
fake_api for the script and the proxy; `aider_args` names the server, the model's price and
edit format, and `env` keeps aider off the network.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fake_api import Failure, Http, Reply, ScriptedApi, Step, rate_limited
from fake_openai import answer_or_error, send_error

__all__ = [
    "MODEL",
    "PRICE",
    "Failure",
    "FakeChat",
    "Reply",
    "Step",
    "rate_limited",
    "search_replace",
    "whole_file",
]

ROUTE = "/v1/chat/completions"
MODEL = "openai/ce-fake"  # litellm's "openai/" prefix: any OpenAI-compatible server
PRICE = {"input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015}  # $3 / $15 per M
API_KEY = "sk-fake-key-for-tests"


def search_replace(path: str, search: str, replace: str) -> str:
    """One edit in aider's `diff` format; an empty `search` creates the file."""
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def whole_file(path: str, content: str) -> str:
    """One file in aider's `whole` format."""
    return f"{path}\n```\n{content}```\n"


class FakeChat(ScriptedApi):
    """`with FakeChat({"Implement phase 1 of PRP-1.1.1": [Reply(text=...)]}) as api:` then run
    aider with `api.aider_args(home)` and `api.env(home)`."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], *, final_text: str = "Done.") -> None:
        super().__init__(scripts, final_text=final_text)
        # Sent before any scripted step, once each: aider retries the same request after
        # a rate limit or a server error, which would get the same step again.
        self.first: list[Failure] = []

    def __enter__(self) -> FakeChat:
        super().__enter__()
        return self

    def aider_args(self, home: Path, *, edit_format: str = "diff") -> list[str]:
        """The arguments naming this server, the model's price and its edit format."""
        settings = home / "aider-model-settings.yml"
        settings.write_text(
            f"- name: {MODEL}\n  edit_format: {edit_format}\n  weak_model_name: {MODEL}\n",
            encoding="utf-8",
        )
        metadata = home / "aider-model-metadata.json"
        info: dict[str, object] = {"max_input_tokens": 128000, "max_output_tokens": 8192, **PRICE}
        info |= {"litellm_provider": "openai", "mode": "chat"}
        metadata.write_text(json.dumps({MODEL: info}), encoding="utf-8")
        return [
            *("--openai-api-base", f"{self.base_url}/v1"),
            *("--model-settings-file", str(settings)),
            *("--model-metadata-file", str(metadata)),
        ]

    def env(self, home: Path) -> dict[str, str]:
        """A temporary HOME (aider writes ~/.aider), the key, the proxy, and litellm's price
        list from its own package: else importing litellm fetches it from GitHub (seen as
        `CONNECT raw.githubusercontent.com:443`, refused by the proxy, after a timeout)."""
        return {
            "HOME": str(home),
            "OPENAI_API_KEY": API_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            **self.proxy_env(),
        }

    def prompt(self, body: Mapping[str, Any]) -> str:
        messages = body.get("messages", [])
        task = self._task(messages)
        return "" if task is None else _content(messages[task])

    def step_of(self, body: Mapping[str, Any]) -> int:
        messages = body.get("messages", [])
        task = self._task(messages)
        after = [] if task is None else messages[task:]
        return sum(1 for message in after if _is_answer(message))

    def _task(self, messages: list[Mapping[str, Any]]) -> int | None:
        """The user message that carries a marker: aider's own follow-ups after it (its
        reports of edits that failed, which the model must fix) are steps of the same task."""
        for index, message in enumerate(messages):
            if message.get("role") == "user" and self._marker(_content(message)) is not None:
                return index
        return None

    def cwd(self, body: Mapping[str, Any]) -> str | None:
        return None

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        if self.first and path.rstrip("/") == ROUTE:
            send_error(http, self.first.pop(0))
            return
        step = answer_or_error(self, http, path, ROUTE, body)
        if step is None:
            return
        assert not step.tools, "aider holds no tools: a reply is text in its edit format"
        assert not step.text.startswith(_AIDERS_OWN), "aider's own acknowledgements start so"
        model = str(body.get("model", MODEL))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            http.sse_data(_chunks(step, model, usage=usage))
        else:
            http.json(200, _completion(step, model))


# Aider adds assistant turns of its own ("Ok.", "Ok, any changes I propose will be to those
# files.") around the files it adds to the chat again when it sends a failed edit back.
_AIDERS_OWN = "Ok"


def _is_answer(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "assistant" and not _content(message).startswith(_AIDERS_OWN)


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content)
    return str(content)


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": reply.text}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(reply),
    }


def _chunks(reply: Reply, model: str, *, usage: bool) -> Iterator[dict[str, Any]]:
    shell = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    first = {"role": "assistant", "content": ""}
    yield {**shell, "choices": [{"index": 0, "delta": first, "finish_reason": None}]}
    for line in reply.text.splitlines(keepends=True):
        delta = {"content": line}
        yield {**shell, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    end = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield {**shell, "choices": [end]}
    if usage:  # as OpenAI does, only when asked for: aider 0.86.2 does not ask
        yield {**shell, "choices": [], "usage": _usage(reply)}
