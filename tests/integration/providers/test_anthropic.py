"""AnthropicProvider against a fake Messages API speaking the real streaming format."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from botical.agent.providers.anthropic import AnthropicProvider
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
from botical.errors import ProviderError
from tests.integration.providers.fake_api import Reply, collect, sse_event

API_KEY = "sk-ant-api03-test-9b1c5e7a3d2f4b6c8e0a1d3f5b7c9e1a"
HELLO = ModelRequest(model="claude-sonnet-4-6", system="", messages=(ModelMessage("user", "Hi"),))
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)


def message_start(input_tokens: int, cache_read: int = 0) -> str:
    usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cache_read,
        "output_tokens": 1,
        "service_tier": "standard",
    }
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return sse_event({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> str:
    return sse_event({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, **fields: Any) -> str:
    return sse_event({"type": "content_block_delta", "index": index, "delta": fields})


def block_stop(index: int) -> str:
    return sse_event({"type": "content_block_stop", "index": index})


def message_end(stop_reason: str, output_tokens: int) -> list[str]:
    usage = {"output_tokens": output_tokens}
    return [
        sse_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            }
        ),
        sse_event({"type": "message_stop"}),
    ]


def tool_use(call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}


PING = sse_event({"type": "ping"})
TEXT_STREAM = [
    message_start(21),
    block_start(0, {"type": "text", "text": ""}),
    PING,
    delta(0, type="text_delta", text="Hello"),
    delta(0, type="text_delta", text=" there"),
    delta(0, type="text_delta", text=", Ada!"),
    block_stop(0),
    *message_end("end_turn", 9),
]


def provider_for(api: Any, **overrides: Any) -> AnthropicProvider:
    settings = {"base_url": api.base_url, "api_key": API_KEY, "timeout": 5.0}
    return AnthropicProvider(ProviderConfig(max_retries=0, **{**settings, **overrides}))


def error_body(error_type: str, message: str) -> dict[str, Any]:
    error = {"type": error_type, "message": message}
    return {"type": "error", "error": error, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


@pytest.mark.gen_test
async def test_text_streams_in_deltas_then_finish_with_usage(anthropic_api):
    anthropic_api.reply(Reply(TEXT_STREAM))

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert error is None
    assert events == [
        TextDelta("Hello"),
        TextDelta(" there"),
        TextDelta(", Ada!"),
        Finish("stop", input_tokens=21, output_tokens=9),
    ]
    assert anthropic_api.requests == [
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "stream": True,
        }
    ]
    assert anthropic_api.headers[0]["authorization"] == f"Bearer {API_KEY}"
    assert "anthropic-version" in anthropic_api.headers[0]


@pytest.mark.gen_test
async def test_history_tools_and_results_map_to_alternating_turns(anthropic_api):
    anthropic_api.reply(Reply(TEXT_STREAM))
    request = ModelRequest(
        model="claude-sonnet-4-6",
        system="You are terse.",
        messages=(
            ModelMessage("user", "Weather in Paris and Oslo?"),
            ModelMessage(
                "assistant",
                "Checking.",
                tool_calls=(
                    ToolCallRequest("toolu_1", "get_weather", {"city": "Paris"}),
                    ToolCallRequest("toolu_2", "get_weather", {"city": "Oslo"}),
                ),
            ),
            ModelMessage("tool", "18°C, sunny", tool_call_id="toolu_1", name="get_weather"),
            ModelMessage(
                "tool", "unknown city", tool_call_id="toolu_2", name="get_weather", is_error=True
            ),
            ModelMessage("user", "Thanks!"),
            ModelMessage("assistant", ""),
            ModelMessage("user", "Bye."),
        ),
        tools=(WEATHER,),
        max_tokens=1024,
    )

    _, error = await collect(provider_for(anthropic_api), request)

    assert error is None
    assert anthropic_api.requests == [
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 1024,
            "system": "You are terse.",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, sunny"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": "unknown city",
                            "is_error": True,
                        },
                        {"type": "text", "text": "Thanks!"},
                        {"type": "text", "text": "Bye."},
                    ],
                },
            ],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "input_schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City name"}},
                        "required": ["city"],
                    },
                }
            ],
            "stream": True,
        }
    ]


@pytest.mark.gen_test
async def test_tool_use_input_is_assembled_from_json_pieces(anthropic_api):
    anthropic_api.reply(
        Reply(
            [
                message_start(412, cache_read=100),
                block_start(0, {"type": "text", "text": ""}),
                delta(0, type="text_delta", text="I'll check"),
                delta(0, type="text_delta", text=" both."),
                block_stop(0),
                block_start(1, tool_use("toolu_01T1x1fJ34qAmk2tNTrN7Up6")),
                delta(1, type="input_json_delta", partial_json=""),
                delta(1, type="input_json_delta", partial_json='{"city": '),
                delta(1, type="input_json_delta", partial_json='"Pa'),
                delta(1, type="input_json_delta", partial_json='ris"}'),
                block_stop(1),
                block_start(2, tool_use("toolu_01A09q90qw90lq917835lq9")),
                delta(2, type="input_json_delta", partial_json='{"city": "Oslo"}'),
                block_stop(2),
                *message_end("tool_use", 89),
            ]
        )
    )
    request = ModelRequest(
        "claude-sonnet-4-6", "", (ModelMessage("user", "Paris? Oslo?"),), (WEATHER,)
    )

    events, error = await collect(provider_for(anthropic_api), request)

    assert error is None
    assert events == [
        TextDelta("I'll check"),
        TextDelta(" both."),
        ToolCallRequest("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", {"city": "Paris"}),
        ToolCallRequest("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Oslo"}),
        Finish("tool_calls", input_tokens=512, output_tokens=89, cached_tokens=100),
    ]


@pytest.mark.gen_test
async def test_thinking_block_then_text(anthropic_api):
    anthropic_api.reply(
        Reply(
            [
                message_start(36),
                block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
                delta(0, type="thinking_delta", thinking="The user greets me;"),
                delta(0, type="thinking_delta", thinking=" greet back."),
                delta(0, type="signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3h"),
                block_stop(0),
                block_start(1, {"type": "text", "text": ""}),
                delta(1, type="text_delta", text="Hi"),
                delta(1, type="text_delta", text="!"),
                block_stop(1),
                *message_end("max_tokens", 64),
            ]
        )
    )

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert error is None
    assert events == [
        ReasoningDelta("The user greets me;"),
        ReasoningDelta(" greet back."),
        TextDelta("Hi"),
        TextDelta("!"),
        Finish("length", input_tokens=36, output_tokens=64),
    ]


@pytest.mark.gen_test
async def test_error_event_mid_stream(anthropic_api):
    overloaded = "event: error\ndata: " + (
        '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    anthropic_api.reply(
        Reply(
            [
                message_start(21),
                block_start(0, {"type": "text", "text": ""}),
                delta(0, type="text_delta", text="Hel"),
                overloaded,
            ]
        )
    )

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == [TextDelta("Hel")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "api", "status": 529, "error_type": "overloaded_error"}
    assert error.message == (
        f"Provider 'anthropic': the stream from {anthropic_api.base_url} failed with "
        "overloaded_error: Overloaded"
    )


@pytest.mark.gen_test
async def test_rejected_key_is_an_auth_error_without_the_key(anthropic_api):
    anthropic_api.reply(
        Reply(status=401, error_body=error_body("authentication_error", "invalid x-api-key"))
    )

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == []
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "auth", "status": 401}
    assert error.message == (
        f"Provider 'anthropic': {anthropic_api.base_url} rejected the API key (HTTP 401); "
        "check the configured api_key"
    )
    assert API_KEY not in repr(error.to_payload())


@pytest.mark.gen_test
async def test_rate_limit(anthropic_api):
    message = (
        "This request would exceed the rate limit for your organization of 50,000 input tokens "
        "per minute. Please reduce the prompt length or try again later."
    )
    anthropic_api.reply(
        Reply(
            status=429,
            error_body=error_body("rate_limit_error", message),
            headers={"retry-after": "18"},
        )
    )

    _, error = await collect(provider_for(anthropic_api), HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "rate_limit", "status": 429}
    assert (
        error.message
        == f"Provider 'anthropic': rate limited by {anthropic_api.base_url}: {message}"
    )


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [(500, "api_error", "Internal server error"), (529, "overloaded_error", "Overloaded")],
)
async def test_server_errors_are_api_errors_with_status(anthropic_api, status, error_type, message):
    anthropic_api.reply(Reply(status=status, error_body=error_body(error_type, message)))

    _, error = await collect(provider_for(anthropic_api), HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "api", "status": status}
    assert error.message == (
        f"Provider 'anthropic': {anthropic_api.base_url} answered HTTP {status}: {message}"
    )


@pytest.mark.gen_test
async def test_closed_port_is_a_network_error(closed_port):
    base_url = f"http://127.0.0.1:{closed_port}"
    provider = AnthropicProvider(
        ProviderConfig(base_url=base_url, api_key=API_KEY, timeout=2.0, max_retries=0)
    )

    _, error = await collect(provider, HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}
    assert error.message.startswith(f"Provider 'anthropic': connection to {base_url} failed: ")


@pytest.mark.gen_test
async def test_connection_dropped_mid_stream_is_a_network_error(anthropic_api):
    anthropic_api.reply(Reply(TEXT_STREAM[:4], cut=True))

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == [TextDelta("Hello")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}


@pytest.mark.gen_test
async def test_stream_that_stalls_is_a_network_timeout(anthropic_api):
    anthropic_api.reply(Reply(TEXT_STREAM[:4], stall=True))

    events, error = await collect(provider_for(anthropic_api, timeout=0.5), HELLO)

    assert events == [TextDelta("Hello")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "network"}
    assert error.message == (
        f"Provider 'anthropic': no answer from {anthropic_api.base_url} within 0.5s"
    )


@pytest.mark.parametrize(
    "partial", ['{"city": "Par', '{"city": ' + "[" * 5000 + "]" * 5000 + "}"], ids=["cut", "deep"]
)
@pytest.mark.gen_test
async def test_invalid_tool_input_is_an_invalid_response(anthropic_api, partial):
    anthropic_api.reply(
        Reply(
            [
                message_start(21),
                block_start(0, tool_use("toolu_1")),
                delta(0, type="input_json_delta", partial_json=partial),
                block_stop(0),
                *message_end("tool_use", 12),
            ]
        )
    )

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == []
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}
    assert "get_weather" in error.message


@pytest.mark.gen_test
async def test_frame_that_is_not_json_is_an_invalid_response(anthropic_api):
    broken = 'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,\n\n'
    anthropic_api.reply(Reply([*TEXT_STREAM[:4], broken]))

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == [TextDelta("Hello")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}


@pytest.mark.gen_test
async def test_stream_without_message_stop_is_an_invalid_response(anthropic_api):
    anthropic_api.reply(Reply(TEXT_STREAM[:5]))

    events, error = await collect(provider_for(anthropic_api), HELLO)

    assert events == [TextDelta("Hello"), TextDelta(" there")]
    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "invalid_response"}


@pytest.mark.gen_test
async def test_missing_sdk_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "anthropic", None)
    provider = AnthropicProvider(ProviderConfig())

    _, error = await collect(provider, HELLO)

    assert isinstance(error, ProviderError)
    assert error.details == {"kind": "not_installed"}
    assert install_command("anthropic") in error.message
