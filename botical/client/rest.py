"""The REST side of a server the client knows by its WebSocket URL."""

from __future__ import annotations

import json
from typing import Any

import tornado.httpclient

from botical.client.errors import ConnectionFailed, ServerError, error_from_payload
from botical.client.urls import server_url


def http_base_url(ws_url: str) -> str:
    """`ws://host:port/ws` -> `http://host:port` (`wss` -> `https`; a path prefix is kept)."""
    return server_url(ws_url).http


async def rest_request(
    base_url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 30
) -> Any:
    """Call the REST API; return the parsed JSON body, or raise the typed error it carries."""
    data = json.dumps(body).encode() if body is not None else None
    if data is None and method in ("POST", "PUT", "PATCH"):
        data = b"{}"
    request = tornado.httpclient.HTTPRequest(
        base_url + path,
        method=method,
        body=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        request_timeout=timeout,
        allow_nonstandard_methods=True,
    )
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as exc:
        raise ConnectionFailed(f"{method} {path}: {exc}") from None
    text = response.body.decode() if response.body else ""
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if response.code == 599:  # tornado's code for "no HTTP response at all"
        raise ConnectionFailed(f"{method} {path}: {response.error}")
    if response.code >= 400:
        if isinstance(parsed, dict) and "error" in parsed:
            raise error_from_payload(parsed["error"])
        raise ServerError(f"{method} {path}: HTTP {response.code}")
    return parsed
