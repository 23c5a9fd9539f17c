"""The provider interface: a provider-neutral request in, a stream of typed events out.

A provider turns a `ModelRequest` into an async iterator of `TextDelta`, `ReasoningDelta`,
`ToolCallRequest` and finally one `Finish`. Any failure (bad key, rate limit, network, a
malformed answer) is raised as `ProviderError` with a clear message and `details.kind`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Role = Literal["user", "assistant", "tool"]
FinishReason = Literal["stop", "tool_calls", "length", "error", "cancelled"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description and JSON Schema of its arguments."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ToolCallRequest:
    """The model asks to call `name` with `arguments`; `id` links the result back."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ModelMessage:
    """One turn of history.

    user: `content`. assistant: `content` and/or `tool_calls`. tool: the result of the call
    `tool_call_id` (tool `name`) in `content`, with `is_error` when the tool failed or was refused.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


@dataclass(frozen=True)
class ModelRequest:
    model: str  # the model name, without the `provider/` prefix
    system: str
    messages: tuple[ModelMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class Finish:
    """The end of a step. `input_tokens` counts every prompt token, the `cached_tokens`
    among them too (those the provider read from its prompt cache, where it says)."""

    reason: FinishReason
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0


StreamEvent = TextDelta | ReasoningDelta | ToolCallRequest | Finish


@dataclass(frozen=True)
class ProviderConfig:
    """What `[providers.NAME]` configures; `api_key` is resolved from env or file, never TOML."""

    base_url: str = ""
    api_key: str = field(default="", repr=False)
    timeout: float = 60.0
    max_retries: int = 2


@runtime_checkable
class Provider(Protocol):
    """A model provider. Registered classes are built once with their ProviderConfig."""

    name: ClassVar[str]

    def __init__(self, config: ProviderConfig) -> None: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream the model's answer to `request`; raise ProviderError on failure."""
        ...


def split_model(ref: str) -> tuple[str, str]:
    """`"openai/gpt-4o"` -> `("openai", "gpt-4o")`; a bare provider name gives `(name, "")`."""
    provider, _, model = ref.partition("/")
    return provider, model
