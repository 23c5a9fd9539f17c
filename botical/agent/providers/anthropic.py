"""The `anthropic` provider: Claude through the Messages API, streamed.

The `anthropic` SDK is the optional extra `botical[anthropic]`; it is imported on first use so
Botical runs without it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from botical import jsonin
from botical.agent.providers.base import (
    Finish,
    FinishReason,
    ModelMessage,
    ModelRequest,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
)
from botical.agent.providers.sdk import MALFORMED, SdkProvider, plain
from botical.errors import BoticalError, ProviderError
from botical.hookspecs import RegisterProvider, hookimpl

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096
# Sent when no key is configured, so the SDK never goes looking for credentials on disk.
KEYLESS_PLACEHOLDER = "no-key"
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "error",
}
# The HTTP status each error type has when it is not sent inside a stream.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicProvider(SdkProvider):
    """Stream messages from Anthropic's Messages API."""

    name: ClassVar[str] = "anthropic"
    sdk_module: ClassVar[str] = "anthropic"
    client_class: ClassVar[str] = "AsyncAnthropic"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    async def _events(self, sdk: Any, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        reader = EventReader()
        events = await self._sdk_client(sdk).messages.create(**request_params(request))
        async with events:
            async for event in events:
                for item in reader.feed(event):
                    yield item
        yield reader.finish()

    def _translate(self, sdk: Any, err: Exception) -> ProviderError | None:
        """Return the ProviderError for an SDK, transport or decoding failure, else None."""
        import httpx2  # the SDK's HTTP client; it leaves errors in the middle of a stream raw

        if isinstance(err, sdk.APIStatusError):
            return self._status_error(err)
        if isinstance(err, sdk.APITimeoutError | httpx2.TimeoutException):
            return self._timeout_error()
        if isinstance(err, sdk.APIConnectionError | httpx2.TransportError):
            return self._connection_error(err)
        if isinstance(err, (sdk.APIResponseValidationError, *MALFORMED)):
            return self._malformed(err)
        if isinstance(err, sdk.AnthropicError):
            return self._error("api", str(err))
        return None

    def _status_error(self, err: Any) -> ProviderError:
        message = err.api_message or "no details given"
        if err.status_code >= 400:
            return self._http_error(err.status_code, message)
        # An `event: error` in a stream that had started with HTTP 200.
        error_type = err.type or "api_error"
        status = ERROR_TYPE_STATUS.get(error_type, 500)
        text = f"the stream from {self.endpoint} failed with {error_type}: {message}"
        kind = "auth" if status in (401, 403) else "rate_limit" if status == 429 else "api"
        return self._error(kind, text, status=status, error_type=error_type)


@dataclass
class ToolUseDraft:
    """A `tool_use` block whose input arrives as `input_json_delta` pieces."""

    id: str
    name: str
    initial_input: object
    pieces: list[str] = field(default_factory=list)

    def complete(self) -> ToolCallRequest:
        """Return the finished call; raise ProviderError if its input is not a JSON object."""
        text = "".join(self.pieces).strip()
        try:
            arguments = jsonin.loads(text, "Input") if text else self.initial_input or {}
        except BoticalError:  # not JSON, nested too deeply, or text that cannot be stored
            arguments = None
        if not isinstance(arguments, dict):
            raise ProviderError(
                f"The model sent an invalid call of tool {self.name!r}: input {text[:200]!r}",
                details={"kind": "invalid_response"},
            )
        return ToolCallRequest(id=self.id, name=self.name, arguments=arguments)


class EventReader:
    """Turn Messages API stream events into stream events."""

    def __init__(self) -> None:
        self.tool_uses: dict[int, ToolUseDraft] = {}
        self.stop_reason: str | None = None
        self.stopped = False
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0

    def feed(self, event: Any) -> Iterator[StreamEvent]:
        """Yield the text, reasoning and completed tool calls carried by one event."""
        match event.type:
            case "message_start":
                usage = event.message.usage
                self.cached_tokens = usage.cache_read_input_tokens or 0
                self.input_tokens = (
                    (usage.input_tokens or 0)
                    + (usage.cache_creation_input_tokens or 0)
                    + self.cached_tokens
                )
            case "content_block_start" if event.content_block.type == "tool_use":
                block = event.content_block
                self.tool_uses[event.index] = ToolUseDraft(block.id, block.name, block.input)
            case "content_block_delta":
                yield from self._delta(event.index, event.delta)
            case "content_block_stop" if event.index in self.tool_uses:
                yield self.tool_uses.pop(event.index).complete()
            case "message_delta":
                self.stop_reason = event.delta.stop_reason or self.stop_reason
                self.output_tokens = event.usage.output_tokens or 0
            case "message_stop":
                self.stopped = True

    def finish(self) -> Finish:
        """Return the closing event once the stream has ended."""
        if not self.stopped:
            raise ProviderError(
                "The model's stream ended before message_stop", details={"kind": "invalid_response"}
            )
        reason = STOP_REASONS.get(self.stop_reason or "end_turn", "stop")
        return Finish(reason, self.input_tokens, self.output_tokens, self.cached_tokens)

    def _delta(self, index: int, delta: Any) -> Iterator[StreamEvent]:
        if delta.type == "text_delta" and delta.text:
            yield TextDelta(delta.text)
        elif delta.type == "thinking_delta" and delta.thinking:
            yield ReasoningDelta(delta.thinking)
        elif delta.type == "input_json_delta" and index in self.tool_uses:
            self.tool_uses[index].pieces.append(delta.partial_json or "")


def request_params(request: ModelRequest) -> dict[str, Any]:
    """Return the keyword arguments of `messages.create` for `request`."""
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": wire_messages(request.messages),
        "stream": True,
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [wire_tool(tool) for tool in request.tools]
    return params


def wire_messages(messages: tuple[ModelMessage, ...]) -> list[dict[str, Any]]:
    """Map history to Messages API turns, merging neighbours of one role (roles must alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role, blocks = wire_blocks(message)
        if not blocks:
            continue  # the API refuses empty turns and empty text blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def wire_blocks(message: ModelMessage) -> tuple[str, list[dict[str, Any]]]:
    """Return the role and content blocks of one turn of history."""
    if message.role == "tool":
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content,
        }
        if message.is_error:
            result["is_error"] = True
        return "user", [result]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": plain(call.arguments)}
        )
    return message.role, blocks


def wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": plain(tool.parameters),
    }


@hookimpl
def botical_register_providers(register: RegisterProvider) -> None:
    """Register the Anthropic provider."""
    register(AnthropicProvider)
