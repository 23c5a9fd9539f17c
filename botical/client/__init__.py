"""Botical's Python client: asyncio, on the public WebSocket protocol (docs/client.md).

```python
async with BoticalClient("ws://127.0.0.1:4096/ws", token) as client:
    session = await client.request("sessions.create", projectId=project_id)
    events = await client.subscribe(f"session:{session['id']}")
    await client.request("messages.send", sessionId=session["id"], content="Hello")
    async for event in events:
        ...
```
"""

from __future__ import annotations

from botical.client.client import BoticalClient
from botical.client.conversation import Conversation
from botical.client.errors import (
    Cancelled,
    ClientClosed,
    ClientError,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    Forbidden,
    InvalidURL,
    MethodNotFound,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    ProviderError,
    RateLimited,
    ServerError,
    Timeout,
    Unauthorized,
    ValidationFailed,
    error_from_payload,
)
from botical.client.events import RESET, SYNCED, ConnectionState, Event, Subscription
from botical.client.rest import http_base_url
from botical.client.urls import ServerURL, server_url

__all__ = [
    "RESET",
    "SYNCED",
    "BoticalClient",
    "Cancelled",
    "ClientClosed",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "ConnectionState",
    "Conversation",
    "Event",
    "Forbidden",
    "InvalidURL",
    "MethodNotFound",
    "NotFound",
    "PayloadTooLarge",
    "ProtocolError",
    "ProviderError",
    "RateLimited",
    "ServerError",
    "ServerURL",
    "Subscription",
    "Timeout",
    "Unauthorized",
    "ValidationFailed",
    "error_from_payload",
    "http_base_url",
    "server_url",
]
