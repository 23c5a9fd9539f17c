"""A stand-in for the socket under a Connection, and a helper that builds connections on it.

`FakeTransport` records every `write_message` and `close`. Each write returns a Future: done at
once normally; while the transport is stalled it stays pending until `release()`, which is what a
client that stops reading looks like from the server (Tornado's write futures never complete).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from botical.auth.identity import Identity
from botical.config import WebSocketSettings
from botical.websocket.connections import Connection

_ids = itertools.count(1)


class FakeTransport:
    def __init__(self, stalled: bool = False) -> None:
        self.written: list[str] = []
        self.closes: list[tuple[int | None, str | None]] = []
        self.stalled = stalled
        self._held: list[asyncio.Future[None]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def write_message(self, message: str) -> asyncio.Future[None]:
        self.written.append(message)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.stalled:
            self._held.append(future)
        else:
            future.set_result(None)
        for count, waiter in self._waiters:
            if len(self.written) >= count and not waiter.done():
                waiter.set_result(None)
        return future

    def writing(self) -> bool:
        """Whether writes are held (Tornado's buffer holds bytes the client has not read)."""
        return any(not future.done() for future in self._held)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closes.append((code, reason))

    def release(self) -> None:
        """Complete every held write and stop holding new ones."""
        self.stalled = False
        for future in self._held:
            if not future.done():
                future.set_result(None)
        self._held.clear()

    async def wait_written(self, count: int, timeout: float = 5) -> list[str]:
        """Wait until at least `count` frames were written; return everything written."""
        if len(self.written) < count:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((count, waiter))
            await asyncio.wait_for(waiter, timeout)
        return self.written


def identity(user_id: str = "usr_alice") -> Identity:
    return Identity(user_id, user_id, False, False, "token", f"jti_{next(_ids)}")


def make_connection(
    transport: FakeTransport | None = None, user_id: str = "usr_alice", **limits: Any
) -> Connection:
    """A Connection on `transport` (a fresh one by default); `limits` override the defaults."""
    return Connection(
        f"conn_{next(_ids)}",
        identity(user_id),
        transport if transport is not None else FakeTransport(),
        WebSocketSettings(**limits),
    )
