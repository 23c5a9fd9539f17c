"""The openai provider through the whole server: a run against a local server speaking the
Chat Completions streaming wire format, with text, a tool call, and a rejected key."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import parts, text_of
from tests.integration.providers.conftest import anthropic_api, openai_api  # noqa: F401
from tests.integration.providers.fake_api import Reply, sse_data
from tests.integration.providers.test_anthropic import (
    block_start,
    block_stop,
    delta,
    message_end,
    message_start,
)
from tests.integration.providers.test_openai import TEXT_STREAM, USAGE, chunk, usage_chunk

API_KEY = "sk-test-0c1d2e3f4a5b6c7d8e9f00112233445566"
MODEL = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-6"


@pytest.fixture
def botical_overrides(openai_api, anthropic_api, monkeypatch):  # noqa: F811
    """Both providers point at local fake servers; their keys come from the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    fake = {"max_retries": 0, "timeout": 5}
    return {
        "providers": {
            "openai": {"base_url": f"{openai_api.base_url}/v1", **fake},
            "anthropic": {"base_url": anthropic_api.base_url, **fake},
        },
        "pricing": {  # per million tokens
            MODEL: {"input": 2.0, "output": 8.0, "cached": 0.5},
            CLAUDE: {"input": 3.0, "output": 15.0},
        },
    }


def read_call(call_id: str, path: str) -> list[str]:
    """A stream whose only content is a call of the `read` tool, in two argument pieces."""
    first = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": "read", "arguments": '{"pa'},
    }
    rest = {"index": 0, "function": {"arguments": f'th": "{path}"}}'}}
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
        chunk({"tool_calls": [rest]}),
        chunk({}, "tool_calls"),
        usage_chunk(USAGE),
        sse_data("[DONE]"),
    ]


@pytest.mark.gen_test
async def test_an_answer_streams_from_the_provider_into_the_session(chat, openai_api):  # noqa: F811
    openai_api.reply(Reply(TEXT_STREAM))
    session = await chat.new_session(model=MODEL)
    answer = await session.answer("Hi there")
    assert (answer["status"], text_of(answer)) == ("completed", "Hello there, Ada!")
    sent = openai_api.requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["messages"][-1] == {"role": "user", "content": "Hi there"}
    assert openai_api.headers[0]["authorization"] == f"Bearer {API_KEY}"  # from the environment


@pytest.mark.gen_test
async def test_a_tool_call_runs_and_its_result_goes_back_to_the_model(chat, openai_api):  # noqa: F811
    (chat.workspace / "a.txt").write_text("alpha")
    openai_api.reply(Reply(read_call("call_1", "a.txt")))
    openai_api.reply(Reply(TEXT_STREAM))
    session = await chat.new_session(model=MODEL)
    answer = await session.answer("What is in a.txt?")
    assert [r["output"] for r in parts(answer, "tool_result")] == ["alpha"]
    assert text_of(answer) == "Hello there, Ada!"
    replayed = openai_api.requests[1]["messages"]
    assert replayed[-2]["tool_calls"][0]["function"] == {
        "name": "read",
        "arguments": '{"path": "a.txt"}',
    }
    assert replayed[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "alpha"}


@pytest.mark.gen_test
async def test_a_rejected_key_ends_the_answer_with_provider_error(chat, openai_api):  # noqa: F811
    openai_api.reply(
        Reply(
            status=401,
            error_body={
                "error": {
                    "message": f"Incorrect API key provided: {API_KEY}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    )
    session = await chat.new_session(model=MODEL)
    failed = await session.finished(await session.started("Hi"), status="error")
    assert (failed["status"], failed["error"]["code"]) == ("error", "PROVIDER_ERROR")
    assert "401" in failed["error"]["message"]
    assert API_KEY not in str(failed)
    openai_api.reply(Reply(TEXT_STREAM))  # the session stays usable
    assert text_of(await session.answer("again")) == "Hello there, Ada!"


@pytest.mark.gen_test
async def test_anthropic_thinking_then_text_become_reasoning_and_text_parts(
    chat,
    anthropic_api,  # noqa: F811
):
    anthropic_api.reply(
        Reply(
            [
                message_start(21),
                block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
                delta(0, type="thinking_delta", thinking="Greet back."),
                block_stop(0),
                block_start(1, {"type": "text", "text": ""}),
                delta(1, type="text_delta", text="Hello"),
                delta(1, type="text_delta", text=" there"),
                block_stop(1),
                *message_end("end_turn", 9),
            ]
        )
    )
    session = await chat.new_session(model=CLAUDE)
    answer = await session.answer("Hi")
    assert [p["text"] for p in parts(answer, "reasoning")] == ["Greet back."]
    assert (answer["status"], text_of(answer)) == ("completed", "Hello there")
    assert anthropic_api.requests[0]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    ]


@pytest.mark.gen_test
async def test_openai_usage_with_cached_tokens_is_stored_and_priced(chat, openai_api):  # noqa: F811
    usage = {**USAGE, "prompt_tokens": 1200, "completion_tokens": 300}
    usage["prompt_tokens_details"] = {"cached_tokens": 1000, "audio_tokens": 0}
    openai_api.reply(Reply([*TEXT_STREAM[:-2], usage_chunk(usage), sse_data("[DONE]")]))
    session = await chat.new_session(model=MODEL)
    answer = await session.answer("Hi")
    expected = (200 * 2.0 + 1000 * 0.5 + 300 * 8.0) / 1_000_000
    assert answer["model"] == MODEL
    assert answer["usage"] == {
        "inputTokens": 1200,
        "outputTokens": 300,
        "cachedTokens": 1000,
        "cost": pytest.approx(expected),
    }
    (step,) = parts(answer, "step_finish")
    assert step["usage"] == {"inputTokens": 1200, "outputTokens": 300, "cachedTokens": 1000}
    totals = (await session.person.api.get(f"/api/sessions/{session.sid}")).body["usage"]
    assert totals == answer["usage"]


@pytest.mark.gen_test
async def test_anthropic_cache_reads_count_as_cached_input(chat, anthropic_api):  # noqa: F811
    anthropic_api.reply(
        Reply(
            [
                message_start(100, cache_read=400),
                block_start(0, {"type": "text", "text": ""}),
                delta(0, type="text_delta", text="Hi"),
                block_stop(0),
                *message_end("end_turn", 20),
            ]
        )
    )
    session = await chat.new_session(model=CLAUDE)
    answer = await session.answer("Hi")
    expected = (500 * 3.0 + 20 * 15.0) / 1_000_000  # no cached price: cached input costs input
    assert answer["usage"] == {
        "inputTokens": 500,
        "outputTokens": 20,
        "cachedTokens": 400,
        "cost": pytest.approx(expected),
    }
