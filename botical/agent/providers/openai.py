"""The `openai` provider: any OpenAI-compatible Chat Completions endpoint, streamed.

Works with OpenAI, Ollama, vLLM, llama.cpp server and OpenRouter. The `openai` SDK is the
optional extra `botical[openai]`; it is imported on first use so Botical runs without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
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

DEFAULT_BASE_URL = "https://api.openai.com/v1"
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "content_filter": "error",
}
# Compatible servers stream chain-of-thought under one of these non-standard delta fields.
REASONING_FIELDS = ("reasoning_content", "reasoning")


class OpenAIProvider(SdkProvider):
    """Stream chat completions from an OpenAI-compatible endpoint."""

    name: ClassVar[str] = "openai"
    sdk_module: ClassVar[str] = "openai"
    client_class: ClassVar[str] = "AsyncOpenAI"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    async def _events(self, sdk: Any, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        reader = ChunkReader()
        # OpenAI's reasoning models refuse `max_tokens`; most local servers know nothing else.
        token_field = "max_completion_tokens" if self.endpoint == DEFAULT_BASE_URL else "max_tokens"
        params = request_params(request, token_field)
        chunks = await self._sdk_client(sdk).chat.completions.create(**params)
        async with chunks:
            async for chunk in chunks:
                for event in reader.feed(chunk):
                    yield event
        yield reader.finish()

    def _translate(self, sdk: Any, err: Exception) -> ProviderError | None:
        """Return the ProviderError for an SDK, transport or decoding failure, else None."""
        if isinstance(err, sdk.APIStatusError):
            return self._http_error(err.status_code, api_message(err.body))
        if isinstance(err, sdk.APITimeoutError):
            return self._timeout_error()
        if isinstance(err, sdk.APIConnectionError):
            return self._connection_error(err)
        if isinstance(err, (sdk.APIResponseValidationError, *MALFORMED)):
            return self._malformed(err)
        if isinstance(err, sdk.APIError):
            # An `{"error": ...}` chunk in the middle of an otherwise successful stream.
            return self._error("api", f"the stream from {self.endpoint} failed: {err.message}")
        if isinstance(err, sdk.OpenAIError):
            return self._error("api", str(err))
        return None


@dataclass
class ToolCallDraft:
    """A tool call whose id and name came first and whose arguments arrive in pieces."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def complete(self, index: int) -> ToolCallRequest:
        """Return the finished call; raise ProviderError if its arguments are not a JSON object."""
        text = "".join(self.arguments).strip() or "{}"
        try:
            arguments = jsonin.loads(text, "Arguments")
        except BoticalError:  # not JSON, nested too deeply, or text that cannot be stored
            arguments = None
        if not self.name or not isinstance(arguments, dict):
            raise ProviderError(
                f"The model sent an invalid call of tool {self.name!r}: arguments {text[:200]!r}",
                details={"kind": "invalid_response"},
            )
        # A few compatible servers omit the id; the runner still needs one to link the result.
        return ToolCallRequest(id=self.id or f"call_{index}", name=self.name, arguments=arguments)


class ChunkReader:
    """Turn `chat.completion.chunk` objects into stream events."""

    def __init__(self) -> None:
        self.drafts: dict[int, ToolCallDraft] = {}
        self.finish_reason: str | None = None
        self.called_tools = False
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0

    def feed(self, chunk: Any) -> Iterator[StreamEvent]:
        """Yield the text, reasoning and completed tool calls carried by one chunk."""
        if chunk.usage is not None:
            self.input_tokens = chunk.usage.prompt_tokens or 0
            self.output_tokens = chunk.usage.completion_tokens or 0
            details = getattr(chunk.usage, "prompt_tokens_details", None)
            self.cached_tokens = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        for choice in chunk.choices or ():
            if choice.delta is not None:
                yield from self._feed_delta(choice.delta)
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
                yield from self._flush_tool_calls()

    def finish(self) -> Finish:
        """Return the closing event once the stream has ended."""
        if self.finish_reason is None:
            raise ProviderError(
                "The model's stream ended without a finish reason",
                details={"kind": "invalid_response"},
            )
        reason = FINISH_REASONS.get(self.finish_reason, "stop")
        if reason == "stop" and self.called_tools:
            reason = "tool_calls"  # some servers (older Ollama) say "stop" after tool calls
        return Finish(reason, self.input_tokens, self.output_tokens, self.cached_tokens)

    def _feed_delta(self, delta: Any) -> Iterator[StreamEvent]:
        for name in REASONING_FIELDS:
            reasoning = getattr(delta, name, None)
            if isinstance(reasoning, str) and reasoning:
                yield ReasoningDelta(reasoning)
        if delta.content:
            yield TextDelta(delta.content)
        for position, piece in enumerate(delta.tool_calls or ()):
            index = piece.index if piece.index is not None else position
            draft = self.drafts.setdefault(index, ToolCallDraft())
            draft.id = piece.id or draft.id
            if piece.function is not None:
                draft.name = piece.function.name or draft.name
                draft.arguments.append(piece.function.arguments or "")

    def _flush_tool_calls(self) -> Iterator[ToolCallRequest]:
        for index in sorted(self.drafts):
            yield self.drafts[index].complete(index)
            self.called_tools = True
        self.drafts.clear()


def request_params(request: ModelRequest, token_field: str = "max_tokens") -> dict[str, Any]:
    """Return the keyword arguments of `chat.completions.create` for `request`."""
    params: dict[str, Any] = {
        "model": request.model,
        "messages": wire_messages(request),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        params["tools"] = [wire_tool(tool) for tool in request.tools]
    if request.max_tokens:
        params[token_field] = request.max_tokens
    return params


def wire_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Map the system prompt and history to Chat Completions messages."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    return messages + [wire_message(message) for message in request.messages]


def wire_message(message: ModelMessage) -> dict[str, Any]:
    """Map one turn of history to a Chat Completions message."""
    if message.role == "tool":
        prefix = "Error: " if message.is_error else ""
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": prefix + message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [wire_tool_call(call) for call in message.tool_calls],
        }
    return {"role": message.role, "content": message.content}


def wire_tool_call(call: ToolCallRequest) -> dict[str, Any]:
    arguments = json.dumps(plain(call.arguments), ensure_ascii=False)
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def wire_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": plain(tool.parameters),
        },
    }


def api_message(body: object) -> str:
    """Return the human-readable message of an error body (`{"message": ...}` or raw text)."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return error["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return "no details given"


@hookimpl
def botical_register_providers(register: RegisterProvider) -> None:
    """Register the OpenAI-compatible provider."""
    register(OpenAIProvider)
