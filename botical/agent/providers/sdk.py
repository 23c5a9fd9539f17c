"""What the SDK-backed providers (openai, anthropic) share: a client per event loop, error
translation into ProviderError with the API key never echoed, and small wire helpers."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from botical.agent.providers.base import (
    ModelRequest,
    ProviderConfig,
    StreamEvent,
    ToolCallRequest,
)
from botical.agent.providers.check import install_command
from botical.agent.providers.names import WireNames
from botical.errors import ProviderError

log = logging.getLogger(__name__)

# Local servers (Ollama, llama.cpp) take no key, but the SDKs refuse to start without one.
KEYLESS_PLACEHOLDER = "no-key"
# What reading a malformed answer raises, from the SDK's JSON decoding or our own field access.
MALFORMED = (ValueError, TypeError, AttributeError)


class SdkProvider:
    """Base of providers built on an official SDK; subclasses give `_events` and `_translate`."""

    name: ClassVar[str]
    sdk_module: ClassVar[str]
    client_class: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.endpoint = public_url(config.base_url or self.default_base_url)
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream the model's answer to `request`; raise ProviderError on failure."""
        sdk = self._import_sdk()
        names = WireNames(request)  # `mcp.<server>.<tool>` is not a name the APIs accept
        try:
            async for event in self._events(sdk, names.outbound(request)):
                yield names.inbound(event) if isinstance(event, ToolCallRequest) else event
        except ProviderError:
            raise
        except Exception as err:
            translated = self._translate(sdk, err)
            if translated is None:
                raise
            raise translated from err

    async def aclose(self) -> None:
        """Close the SDK client's pooled connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _events(self, sdk: Any, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError

    def _translate(self, sdk: Any, err: Exception) -> ProviderError | None:
        raise NotImplementedError

    def _import_sdk(self) -> Any:
        try:
            return importlib.import_module(self.sdk_module)
        except ImportError as err:
            raise ProviderError(
                f"Provider {self.name!r} needs the {self.sdk_module} SDK: "
                f"{install_command(self.sdk_module)}",
                details={"kind": "not_installed"},
            ) from err

    def _sdk_client(self, sdk: Any) -> Any:
        # httpx connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = getattr(sdk, self.client_class)(
                base_url=self.config.base_url or None,
                api_key=self.config.api_key or KEYLESS_PLACEHOLDER,
                timeout=self.config.timeout,
                max_retries=self.config.max_retries,
            )
            self._client_loop = loop
        return self._client

    def _http_error(self, status: int, message: str) -> ProviderError:
        if status == 401:
            kind = "auth"
            text = f"{self.endpoint} rejected the API key (HTTP 401); check the configured api_key"
        elif status == 403:
            kind, text = "auth", f"{self.endpoint} denied access (HTTP 403): {message}"
        elif status == 429:
            kind, text = "rate_limit", f"rate limited by {self.endpoint}: {message}"
        else:
            kind, text = "api", f"{self.endpoint} answered HTTP {status}: {message}"
        return self._error(kind, text, status=status)

    def _timeout_error(self) -> ProviderError:
        return self._error(
            "network", f"no answer from {self.endpoint} within {self.config.timeout:g}s"
        )

    def _connection_error(self, err: Exception) -> ProviderError:
        return self._error(
            "network", f"connection to {self.endpoint} failed: {err.__cause__ or err}"
        )

    def _malformed(self, err: Exception) -> ProviderError:
        log.warning("Malformed answer from %s", self.endpoint, exc_info=True)
        return self._error("invalid_response", f"malformed answer from {self.endpoint}: {err}")

    def _error(self, kind: str, message: str, **details: Any) -> ProviderError:
        text = redact(f"Provider {self.name!r}: {message}", self.config.api_key)
        return ProviderError(text, details={"kind": kind, **details})


def plain(value: Any) -> Any:
    """Copy nested mappings and tuples into the dicts and lists a JSON encoder accepts."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def public_url(url: str) -> str:
    """Return `url` without credentials or query, fit for an error message."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}".rstrip("/")


def redact(text: str, secret: str) -> str:
    """Blank out `secret` wherever an upstream message echoed it."""
    return text.replace(secret, "[redacted]") if secret else text
