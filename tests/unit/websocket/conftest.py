from __future__ import annotations

import asyncio
from typing import Any

import pytest


@pytest.fixture
def started(io_loop: Any):
    """`started(conn)` starts a connection's writer; after the test each is discarded and its
    writer task awaited, so no task outlives the test's loop."""
    connections: list[Any] = []

    def start(connection: Any) -> Any:
        connection.start()
        connections.append(connection)
        return connection

    yield start

    async def stop() -> None:
        for connection in connections:
            connection.discard()
        writers = [c._writer for c in connections if c._writer is not None]
        await asyncio.gather(*writers, return_exceptions=True)

    io_loop.run_sync(stop)
