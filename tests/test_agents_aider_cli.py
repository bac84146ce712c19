"""The aider preset against the real aider (pinned, in its own environment under tests/.tools)
and a scripted local Chat Completions API: aider applies the scripted SEARCH/REPLACE edits, `ce`'s
launch program commits each phase, and nothing leaves the machine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent_kit import git, launch, make_job, subjects
from agent_tools import require_aider
from ce.agents.aider import PACKAGE, AiderExecutor
from ce.config import AgentConfig
from fake_openai_chat import (
    MODEL,
    PRICE,
    Failure,
    FakeChat,
    Reply,
    rate_limited,
    search_replace,
    whole_file,
)


@pytest.fixture
def aider_bin() -> Path:
    return require_aider()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def aider_executor(binary: Path, args: list[str]) -> AiderExecutor:
    settings = {"binary": str(binary), "models": {"sonnet": MODEL}, "extra_args": args}
    return AiderExecutor(AgentConfig.model_validate(settings))


def priced(input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * PRICE["input_cost_per_token"]
        + output_tokens * PRICE["output_cost_per_token"]
    )


def test_preflight_reads_the_version_and_accepts_the_flags(aider_bin: Path, tmp_path: Path) -> None:
    executor = AiderExecutor(AgentConfig.model_validate({"binary": str(aider_bin)}))

    executor.preflight(tmp_path)

    assert executor.version == PACKAGE.pinned


def test_each_phase_edited_by_aider_and_committed_by_ce(
    aider_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-5.1.1", ["Core", "Docs"])
    job = replace(job, prp=replace(job.prp, files=("core.py", "docs.md")))  # declared
    (job.worktree / "core.py").write_text("VALUE = 0\n")
    git(job.worktree, "add", "core.py")
    git(job.worktree, "commit", "-q", "-m", "core")
    script = {
        "Implement phase 1 of PRP-5.1.1": [
            Reply(text="Set it.\n\n" + search_replace("core.py", "VALUE = 0\n", "VALUE = 1\n"))
        ],
        "Implement phase 2 of PRP-5.1.1": [
            Reply(text=search_replace("core.py", "VALUE = 5\n", "VALUE = 2\n")),  # no match
            Reply(text=search_replace("docs.md", "", "# Docs\n"), output_tokens=50),
        ],
    }
    with FakeChat(script) as api:
        done = launch(aider_executor(aider_bin, api.aider_args(home)), job, api.env(home))

    assert done.code == 0, done.output[-3000:]
    assert done.assessment.error is None
    assert subjects(job.worktree)[2:] == ["PRP-5.1.1: Phase 1 - Core", "PRP-5.1.1: Phase 2 - Docs"]
    assert (job.worktree / "core.py").read_text() == "VALUE = 1\n"
    assert (job.worktree / "docs.md").read_text() == "# Docs\n"
    assert git(job.worktree, "status", "--porcelain", "--ignored") == ""  # its cache removed
    # The declared file that exists is in the chat; the other is not made an empty file.
    assert done.output.count("Added core.py to the chat.") == 2
    assert "docs.md" not in done.output.split("[ce] PRP-5.1.1 phase 2: aider")[0]
    # A new chat per phase; aider reported the edit that failed, and the model fixed it.
    assert [seen.step for seen in api.seen] == [0, 0, 1]
    assert "SEARCH/REPLACE block failed to match" in api.seen[2].text
    assert {seen.body["model"] for seen in api.seen} == {MODEL.removeprefix("openai/")}
    assert all(seen.body["stream"] and "stream_options" not in seen.body for seen in api.seen)
    assert "Implement phase 1 of PRP-5.1.1" in api.seen[0].body["messages"][-1]["content"]
    assert api.outbound == []  # no update check, analytics or price list download
    assert api.refused == []
    # Aider asks no usage of a streamed answer: it counts the tokens itself and prices them
    # with the model's metadata, printing both, rounded to 2 significant digits.
    found = done.assessment
    assert found.cost_usd is not None and found.input_tokens and found.output_tokens
    assert found.cost_usd == pytest.approx(priced(found.input_tokens, found.output_tokens), 0.05)


def test_without_streaming_the_servers_usage_is_the_cost(
    aider_bin: Path, tmp_path: Path, home: Path
) -> None:
    """Also the `whole` edit format (aider's choice for a model it knows nothing of)."""
    job = make_job(tmp_path, "PRP-5.1.2", ["Only"])
    edit = whole_file("one.txt", "1\n")
    script = {"Implement phase 1 of PRP-5.1.2": [Reply(text=edit, input_tokens=2000)]}
    with FakeChat(script) as api:
        args = [*api.aider_args(home, edit_format="whole"), "--no-stream"]
        done = launch(aider_executor(aider_bin, args), job, api.env(home))

    assert done.code == 0, done.output[-3000:]
    assert (job.worktree / "one.txt").read_text() == "1\n"
    assert "with whole edit format" in done.output
    assert not api.seen[0].body.get("stream")
    assert (done.assessment.input_tokens, done.assessment.output_tokens) == (2000, 200)
    assert done.assessment.cost_usd == round(priced(2000, 200), 6) == 0.009


def test_a_model_error_is_the_reason(aider_bin: Path, tmp_path: Path, home: Path) -> None:
    """Aider exits 0 when its request fails; the phase changed nothing, and aider said why.
    (A phase whose answer changes nothing: test_agents_aider_batch; the commits kept before
    it: test_agents_aider.)"""
    job = make_job(tmp_path, "PRP-5.1.4", ["Only"])
    failure = Failure(status=400, error_type="invalid_request_error", message="prompt too long")
    with FakeChat({"Implement phase 1 of PRP-5.1.4": [failure]}) as api:
        done = launch(aider_executor(aider_bin, api.aider_args(home)), job, api.env(home))

    assert done.code == 1
    assert done.assessment.error == (
        "aider changed nothing in phase 1: "
        "litellm.BadRequestError: OpenAIException - prompt too long"
    )
    assert done.assessment.retry_after is None


def test_a_rate_limit_aider_retried_is_no_failure(
    aider_bin: Path, tmp_path: Path, home: Path
) -> None:
    job = make_job(tmp_path, "PRP-5.1.5", ["Only"])
    script = {"Implement phase 1 of PRP-5.1.5": [Reply(text=search_replace("one.txt", "", "1\n"))]}
    with FakeChat(script) as api:
        # The OpenAI SDK in aider retries twice by itself; aider sees the third, and retries.
        api.first = [rate_limited(retry_after=0)] * 3
        done = launch(aider_executor(aider_bin, api.aider_args(home)), job, api.env(home))

    assert done.code == 0, done.output[-3000:]
    assert api.first == []
    assert "litellm.RateLimitError: " in done.output  # what aider printed before it retried
    assert done.assessment.error is None
    assert subjects(job.worktree)[1:] == ["PRP-5.1.5: Phase 1 - Only"]
