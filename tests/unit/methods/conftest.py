from __future__ import annotations

from typing import Any

import pytest

from botical.testing.wsclient import WsClient


@pytest.fixture
def connect(io_loop: Any, botical_app: Any):
    """`await connect(person)` -> a WsClient on the test server, closed after the test."""
    clients: list[WsClient] = []

    async def open_(person: Any) -> WsClient:
        client = await WsClient.connect(f"ws://127.0.0.1:{botical_app.port}/ws", person.token)
        clients.append(client)
        return client

    yield open_
    for client in clients:
        client.close()
