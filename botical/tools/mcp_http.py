"""An MCP server at a streamable-HTTP URL, through the SDK's transport, with headers (secrets
resolved) and a bound on what one answer may hold. Imported only when such a server starts.

The SDK bounds one event of an event stream; a plain JSON answer it reads whole, so the HTTP
client's transport here stops reading any answer that is not an event stream past the bound.
Redirects are the SDK's affair: it follows only those that stay on the server's origin, so the
headers never go anywhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client

SSE_READ_TIMEOUT = 300.0  # an event stream may stay quiet this long (the SDK's default)


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, stream: Any, cap: int) -> None:
        self._stream = stream
        self._cap = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > self._cap:
                raise httpx2.DecodingError(f"the server's answer is over {self._cap} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CappedTransport(httpx2.AsyncBaseTransport):
    """Answers that are not event streams are cut off (as an error) past `cap` bytes."""

    def __init__(self, cap: int) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._cap = cap

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.stream = _Capped(response.stream, self._cap)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextlib.asynccontextmanager
async def http_transport(
    url: str, headers: dict[str, str], timeout: float, max_message: int
) -> AsyncIterator[Any]:
    """The SDK's streams to the server at `url`, sending `headers` with every request."""
    client = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(timeout, read=SSE_READ_TIMEOUT),
        transport=_CappedTransport(max_message),
    )
    async with (
        client,
        streamable_http_client(url, http_client=client, max_sse_event_size=max_message) as streams,
    ):
        yield streams
