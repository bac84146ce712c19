"""A scripted stand-in for the Gemini API, to run the real Gemini CLI offline.

Gemini CLI 0.61.0 honours `GOOGLE_GEMINI_BASE_URL` (read in its content-generator factory, for
the API-key and gateway auth types alike) and calls, on that base,
`POST /v1beta/models/<model>:streamGenerateContent?alt=sse` for each model turn; the side
requests of its model router (`--model` unset) use `:generateContent`. Both are answered here:
a stream is bare `data: <GenerateContentResponse>` lines, one JSON response otherwise, each with
`usageMetadata` so the CLI's `result` event carries tokens.

The conversation's marker is looked for in the user's prompt (the first user turn's text parts
after the CLI's `<session_context>`, which lists the worktree's files: other PRP ids); its step
is the number of `model` turns in `contents`. The CLI names the workspace directory in that
context, which fills `{cwd}` in tool arguments. A conversation no script claims, or any other
path, is refused and recorded in `refused`; any foreign host, through the proxy (the CLI sends
all its traffic through `HTTPS_PROXY`), in `outbound` (see fake_api).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fake_api import Failure, Http, Reply, ScriptedApi, Seen, Step, ToolCall, rate_limited, texts

__all__ = [
    "Failure",
    "FakeGemini",
    "Reply",
    "Step",
    "ToolCall",
    "rate_limited",
    "shell",
    "write",
]

_CWD = re.compile(r"\*\*Workspace Directories:\*\*\n\s*- (\S+)")
_ROUTE = re.compile(
    r"^/v1beta/models/(?P<model>[^:/]+):(?P<method>streamGenerateContent|generateContent)"
)
_CONTEXT = "<session_context>"
_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def write(path: str, content: str) -> ToolCall:
    """The CLI's `write_file` tool; a relative path is taken from the workspace directory."""
    absolute = path if path.startswith("/") else "{cwd}/" + path
    return ToolCall(name="write_file", input={"file_path": absolute, "content": content})


def shell(command: str) -> ToolCall:
    """The CLI's `run_shell_command` tool (`bash -c`, in the workspace directory)."""
    return ToolCall(
        name="run_shell_command", input={"command": command, "description": "scripted step"}
    )


class FakeGemini(ScriptedApi):
    """`with FakeGemini({"PRP-1.1.1": [Reply(...), ...]}) as api:` then run the CLI with
    `api.env(home)` after `api.settings(home)`."""

    def __init__(self, scripts: Mapping[str, Sequence[Step]], *, final_text: str = "Done.") -> None:
        super().__init__(scripts, final_text=final_text)
        self.side: list[Seen] = []

    def __enter__(self) -> FakeGemini:
        super().__enter__()
        return self

    def settings(self, home: Path, *, usage_statistics: bool = False) -> Path:
        """`~/.gemini/settings.json`: API-key auth (never OAuth), one attempt per request (a
        scripted failure fails now, not after backoff), no usage statistics unless asked (they
        go to play.googleapis.com: the proxy refuses them)."""
        config = home / ".gemini" / "settings.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "general": {"maxAttempts": 1, "enableAutoUpdate": False},
            "privacy": {"usageStatisticsEnabled": usage_statistics},
        }
        config.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        return config

    def env(self, home: Path) -> dict[str, str]:
        """What the CLI needs to talk to this server and nothing else, with its state in `home`."""
        return {
            "HOME": str(home),
            "GEMINI_API_KEY": "fake-gemini-key-for-tests",
            "GOOGLE_GEMINI_BASE_URL": self.base_url,
            "GEMINI_CLI_NO_RELAUNCH": "true",  # one Node process, not two: halves the start-up
            "TMPDIR": str(home),  # where the CLI writes its error reports
            **self.proxy_env(),
        }

    def prompt(self, body: Mapping[str, Any]) -> str:
        for content in body.get("contents", []):
            if content.get("role") != "user":
                continue
            parts = [str(p["text"]) for p in content.get("parts", []) if "text" in p]
            return "\n".join(p for p in parts if not p.lstrip().startswith(_CONTEXT))
        return ""

    def step_of(self, body: Mapping[str, Any]) -> int:
        return sum(1 for c in body.get("contents", []) if c.get("role") == "model")

    def cwd(self, body: Mapping[str, Any]) -> str | None:
        match = _CWD.search("\n".join(texts(body.get("contents"))))
        return match.group(1) if match else None

    def handle(self, http: Http, path: str, body: dict[str, Any]) -> None:
        route = _ROUTE.match(path)
        if route is None:
            self.refused.append(f"POST {path}")
            error = {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}
            http.json(404, {"error": error})
            return
        model = route["model"]
        schema = body.get("generationConfig", {}).get("responseJsonSchema")
        if schema is not None:
            self.side.append(Seen(path=path, body=body, marker=None, step=0))
            http.json(200, _side_answer(schema, model))
            return
        if self._marker(self.prompt(body)) is None:
            self.refused.append(f"POST {path} (no scripted conversation)")
            error = {"code": 400, "message": "no scripted conversation", "status": "NOT_FOUND"}
            http.json(400, {"error": error})
            return
        step = self.answer(path, body)
        if isinstance(step, Failure):
            http.json(step.status, {"error": _error(step)}, step.headers)
            return
        response = _response(step, model)
        if route["method"] == "streamGenerateContent":
            http.sse(("", chunk) for chunk in _chunks(response))
        else:
            http.json(200, response)


def _side_answer(schema: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The CLI's own JSON questions (its model router's complexity score) are not turns of the
    conversation: the least the schema allows (they are kept in `side`, not `seen`)."""
    reply = Reply(text=json.dumps(_least(schema)), input_tokens=100, output_tokens=10)
    return _response(reply, model)


def _least(schema: Mapping[str, Any]) -> Any:
    """The simplest value of a JSON schema (the CLI writes its types in upper case)."""
    kind = str(schema.get("type", "string")).lower()
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _least(properties[name]) for name in schema.get("required", properties)}
    if "enum" in schema:
        return schema["enum"][0]
    simplest: dict[str, Any] = {"integer": 1, "number": 1, "boolean": False, "array": []}
    return simplest.get(kind, "scripted")


def _error(failure: Failure) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": failure.status,
        "message": failure.message,
        "status": _STATUS.get(failure.status, "UNKNOWN"),
    }
    retry = failure.headers.get("retry-after")
    if retry is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"}
        ]
    return error


def _response(reply: Reply, model: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if reply.text:
        parts.append({"text": reply.text})
    for tool in reply.tools:
        parts.append({"functionCall": {"name": tool.name, "args": dict(tool.input)}})
    usage = {
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": reply.output_tokens,
        "cachedContentTokenCount": reply.cached_tokens,
        "thoughtsTokenCount": reply.thinking_tokens,
        "totalTokenCount": reply.input_tokens + reply.output_tokens + reply.thinking_tokens,
    }
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}


def _chunks(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stream as the API sends it: the parts first, then the finish reason and the usage."""
    candidate = response["candidates"][0]
    parts = candidate["content"]["parts"]
    for part in parts[:-1]:
        yield {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]}
    last = dict(candidate, content={"role": "model", "parts": parts[-1:]})
    yield {**response, "candidates": [last]}
