"""OpenAIProvider against a fake Chat Completions server speaking the real streaming format."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from botical.agent.providers.base import (
    Finish,
    ModelMessage,
    ModelRequest,
    ProviderConfig,
    ReasoningDelta,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
)
from botical.agent.providers.check import install_command
from botical.agent.providers.openai import OpenAIProvider
from botical.errors import ProviderError
from tests.integration.providers.fake_api import Reply, collect, sse_data

API_KEY = "sk-test-4f9c2a7e1b8d4c0e9a3f5b6d7c8e9f01"
HELLO = ModelRequest(model="gpt-4o-mini", system="", messages=(ModelMessage("user", "Hi"),))
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
USAGE = {
    "prompt_tokens": 24,
    "completion_tokens": 4,
    "total_tokens": 28,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
    """A `chat.completion.chunk` frame as OpenAI streams it."""
    return sse_data(
        {
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": None,
        }
    )


def usage_chunk(usage: dict[str, Any]) -> str:
    """The last chunk when `stream_options.include_usage` is set: no choices, only usage."""
    return sse_data(
        {
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [],
            "usage": usage,
        }
    )


def tool_piece(index: int, arguments: str, call_id: str | None = None) -> dict[str, Any]:
    """A tool-call delta: the first carries id and name, the rest only argument text."""
    if call_id is None:
        return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}
    function = {"name": "get_weather", "arguments": arguments}
    return {
        "tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]
    }


TEXT_STREAM = [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "Hello"}),
    chunk({"content": " there"}),
    chunk({"content": ", Ada!"}),
    chunk({}, "stop"),
    usage_chunk(USAGE),
    sse_data("[DONE]"),
]


def provider_for(api: Any, **overrides: Any) -> OpenAIProvider:
    settings = {"base_url": f"{api.base_url}/v1", "api_key": API_KEY, "timeout": 5.0}
    return OpenAIProvider(ProviderConfig(max_retries=0, **{**settings, **overrides}))


@pytest.mark.gen_test
async def test_text_streams_in_deltas_then_finish_with_usage(openai_api):
    openai_api.reply(Reply(TEXT_STREAM))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert error is None
    assert events == [
        TextDelta("Hello"),
        TextDelta(" there"),
        TextDelta(", Ada!"),
        Finish("stop", input_tokens=24, output_tokens=4),
    ]
    assert openai_api.requests == [
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ]
    assert openai_api.headers[0]["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.gen_test
async def test_history_tools_and_results_map_to_wire_messages(openai_api):
    openai_api.reply(Reply(TEXT_STREAM))
    request = ModelRequest(
        model="gpt-4o-mini",
        system="You are terse.",
        messages=(
            ModelMessage("user", "Weather in Paris and Oslo?"),
            ModelMessage(
                "assistant",
                "Checking.",
                tool_calls=(
                    ToolCallRequest("call_1", "get_weather", {"city": "Paris"}),
                    ToolCallRequest("call_2", "get_weather", {"city": "Oslo"}),
                ),
            ),
            ModelMessage("tool", "18°C, sunny", tool_call_id="call_1", name="get_weather"),
            ModelMessage(
                "tool", "unknown city", tool_call_id="call_2", name="get_weather", is_error=True
            ),
            ModelMessage("assistant", tool_calls=(ToolCallRequest("call_3", "get_weather", {}),)),
            ModelMessage("tool", "", tool_call_id="call_3", name="get_weather"),
            ModelMessage("user", "Thanks!"),
        ),
        tools=(WEATHER,),
        max_tokens=256,
    )

    _, error = await collect(provider_for(openai_api), request)

    assert error is None
    assert openai_api.requests == [
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": "Error: unknown city"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_3",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_3", "content": ""},
                {"role": "user", "content": "Thanks!"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Current weather for a city.",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string", "description": "City name"}},
                            "required": ["city"],
                        },
                    },
                }
            ],
            "max_tokens": 256,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ]


@pytest.mark.gen_test
async def test_parallel_tool_calls_are_assembled_from_pieces(openai_api):
    openai_api.reply(
        Reply(
            [
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        **tool_piece(0, "", "call_DdmO9pD3xa9XTPNJ32zg2hcA"),
                    }
                ),
                chunk(tool_piece(0, '{"ci')),
                chunk(tool_piece(0, 'ty": "P')),
                chunk(tool_piece(0, 'aris"}')),
                chunk(tool_piece(1, "", "call_ABxTvv7Q1bLkQmlrYV3HCuLm")),
                chunk(tool_piece(1, '{"city"')),
                chunk(tool_piece(1, ': "Oslo"}')),
                chunk({}, "tool_calls"),
                usage_chunk({**USAGE, "prompt_tokens": 80, "completion_tokens": 47}),
                sse_data("[DONE]"),
            ]
        )
    )
    request = ModelRequest("gpt-4o-mini", "", (ModelMessage("user", "Paris? Oslo?"),), (WEATHER,))

    events, error = await collect(provider_for(openai_api), request)

    assert error is None
    assert events == [
        ToolCallRequest("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", {"city": "Paris"}),
        ToolCallRequest("call_ABxTvv7Q1bLkQmlrYV3HCuLm", "get_weather", {"city": "Oslo"}),
        Finish("tool_calls", input_tokens=80, output_tokens=47),
    ]


@pytest.mark.gen_test
@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas_of_compatible_servers(openai_api, field):
    # vLLM and DeepSeek stream `reasoning_content`; Ollama and OpenRouter stream `reasoning`.
    openai_api.reply(
        Reply(
            [
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": None, field: "The user"}),
                chunk({"content": None, field: " greets me."}),
                chunk({"content": "Hi!"}),
                chunk({}, "length"),
                usage_chunk(USAGE),
                sse_data("[DONE]"),
            ]
        )
    )

    events, error = await collect(provider_for(openai_api), HELLO)

    assert error is None
    assert events == [
        ReasoningDelta("The user"),
        ReasoningDelta(" greets me."),
        TextDelta("Hi!"),
        Finish("length", input_tokens=24, output_tokens=4),
    ]


@pytest.mark.gen_test
async def test_keyless_local_server_without_usage(openai_api):
    # Ollama and llama.cpp take no key; a server may ignore `include_usage`.
    openai_api.reply(Reply([chunk({"content": "ok"}), chunk({}, "stop"), sse_data("[DONE]")]))

    events, error = await collect(provider_for(openai_api, api_key=""), HELLO)

    assert error is None
    assert events == [TextDelta("ok"), Finish("stop")]
    assert openai_api.headers[0]["authorization"].startswith("Bearer ")


@pytest.mark.gen_test
async def test_rejected_key_is_an_auth_error_without_the_key(openai_api):
    # OpenAI masks the key in this message; a compatible proxy may echo it whole.
    message = f"Incorrect API key provided: {API_KEY}. You can find your API key at https://platform.openai.com/account/api-keys."
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    openai_api.reply(Reply(status=401, error_body=body))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == []
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "auth", "status": 401}
    assert error.message == (
        f"Provider 'openai': {openai_api.base_url}/v1 rejected the API key (HTTP 401); "
        "check the configured api_key"
    )
    assert API_KEY not in repr(error.to_payload())


@pytest.mark.gen_test
async def test_rate_limit(openai_api):
    message = (
        "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s."
    )
    body = {
        "error": {
            "message": message,
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    openai_api.reply(Reply(status=429, error_body=body, headers={"retry-after": "20"}))

    _, error = await collect(provider_for(openai_api), HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "rate_limit", "status": 429}
    assert (
        error.message == f"Provider 'openai': rate limited by {openai_api.base_url}/v1: {message}"
    )


@pytest.mark.gen_test
async def test_server_error_is_an_api_error_with_status(openai_api):
    message = "The server had an error while processing your request. Sorry about that!"
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    openai_api.reply(Reply(status=500, error_body=body))

    _, error = await collect(provider_for(openai_api), HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "api", "status": 500}
    assert (
        error.message == f"Provider 'openai': {openai_api.base_url}/v1 answered HTTP 500: {message}"
    )


@pytest.mark.gen_test
async def test_error_chunk_in_the_middle_of_the_stream(openai_api):
    # vLLM and OpenRouter report a failure after the 200 as a chunk holding `error`.
    error_chunk = sse_data({"error": {"message": "upstream overloaded", "type": "server_error"}})
    openai_api.reply(Reply([chunk({"content": "Hel"}), error_chunk]))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == [TextDelta("Hel")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "api"}
    assert "upstream overloaded" in error.message


@pytest.mark.gen_test
async def test_closed_port_is_a_network_error(closed_port):
    provider = OpenAIProvider(
        ProviderConfig(base_url=f"http://127.0.0.1:{closed_port}/v1", timeout=2.0, max_retries=0)
    )

    _, error = await collect(provider, HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}
    assert error.message.startswith(
        f"Provider 'openai': connection to http://127.0.0.1:{closed_port}/v1 failed: "
    )


@pytest.mark.gen_test
async def test_connection_dropped_mid_stream_is_a_network_error(openai_api):
    openai_api.reply(Reply([chunk({"content": "Hel"})], cut=True))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == [TextDelta("Hel")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}


@pytest.mark.gen_test
async def test_server_that_never_answers_is_a_network_timeout(openai_api):
    openai_api.reply(Reply(stall=True))

    _, error = await collect(provider_for(openai_api, timeout=0.5), HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}
    assert error.message == (
        f"Provider 'openai': no answer from {openai_api.base_url}/v1 within 0.5s"
    )


@pytest.mark.parametrize(
    "arguments", ['{"city": "Par', '{"city": ' + "[" * 5000 + "]" * 5000 + "}"], ids=["cut", "deep"]
)
@pytest.mark.gen_test
async def test_invalid_tool_arguments_are_an_invalid_response(openai_api, arguments):
    openai_api.reply(
        Reply(
            [
                chunk(tool_piece(0, arguments, "call_1")),
                chunk({}, "tool_calls"),
                sse_data("[DONE]"),
            ]
        )
    )

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == []
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}
    assert "get_weather" in error.message


@pytest.mark.gen_test
async def test_frame_that_is_not_json_is_an_invalid_response(openai_api):
    openai_api.reply(Reply([chunk({"content": "Hel"}), 'data: {"choices": [\n\n']))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == [TextDelta("Hel")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}


@pytest.mark.gen_test
async def test_stream_without_finish_reason_is_an_invalid_response(openai_api):
    openai_api.reply(Reply([chunk({"content": "Hel"}), sse_data("[DONE]")]))

    events, error = await collect(provider_for(openai_api), HELLO)

    assert events == [TextDelta("Hel")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}


@pytest.mark.gen_test
async def test_missing_sdk_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    provider = OpenAIProvider(ProviderConfig())

    _, error = await collect(provider, HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "not_installed"}
    assert install_command("openai") in error.message


@pytest.mark.gen_test
async def test_tool_names_with_dots_are_mapped_for_the_api_and_back(openai_api):
    mcp_tool = ToolSpec("mcp.github.create_issue", "Open an issue.", WEATHER.parameters)
    taken = ToolSpec("mcp__github__create_issue", "A custom tool of that name.", {})
    function = {"name": "mcp__github__create_issue_57095cf5", "arguments": "{}"}
    openai_api.reply(
        Reply(
            [
                chunk({"tool_calls": [{"index": 0, "id": "c1", "function": function}]}),
                chunk({}, "tool_calls"),
                sse_data("[DONE]"),
            ]
        )
    )
    history = (
        ModelMessage("user", "File it"),
        ModelMessage("assistant", tool_calls=(ToolCallRequest("c0", mcp_tool.name, {}),)),
        ModelMessage("tool", "done", tool_call_id="c0", name=mcp_tool.name),
    )
    request = ModelRequest("gpt-4o-mini", "", history, (mcp_tool, taken))

    events, error = await collect(provider_for(openai_api), request)

    assert error is None
    sent = openai_api.requests[0]
    names = [tool["function"]["name"] for tool in sent["tools"]]
    assert names == ["mcp__github__create_issue_57095cf5", "mcp__github__create_issue"]
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == names[0]
    assert events[0] == ToolCallRequest("c1", "mcp.github.create_issue", {})


@pytest.mark.gen_test
async def test_cached_prompt_tokens_are_reported_and_their_absence_is_zero(openai_api):
    cached = {**USAGE, "prompt_tokens_details": {"cached_tokens": 16, "audio_tokens": 0}}
    bare = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}  # Ollama, llama.cpp
    for usage in (cached, bare):
        openai_api.reply(Reply([*TEXT_STREAM[:-2], usage_chunk(usage), sse_data("[DONE]")]))

    first, _ = await collect(provider_for(openai_api), HELLO)
    second, _ = await collect(provider_for(openai_api), HELLO)

    assert first[-1] == Finish("stop", input_tokens=24, output_tokens=4, cached_tokens=16)
    assert second[-1] == Finish("stop", input_tokens=7, output_tokens=2, cached_tokens=0)
