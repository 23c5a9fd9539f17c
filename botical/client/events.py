"""What the client hands its caller: events, connection states, and subscriptions."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

SYNCED = "session.synced"  # synthetic: a `session:` channel was resynced with sessions.sync
RESET = "subscription.reset"  # synthetic: a `project:`/`user:` channel lost events


class ConnectionState(enum.StrEnum):
    """Where the client's connection stands (`client.state`, the `on_state` callback)."""

    IDLE = "idle"  # created, connect() not called yet
    CONNECTING = "connecting"  # the first connect() is under way
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # the socket dropped; retrying with backoff
    CLOSED = "closed"  # close() was called, or the credential was refused: for good


@dataclass(frozen=True)
class Event:
    """One event of a subscribed channel, handed to the caller at most once."""

    channel: str
    event: str
    data: dict[str, Any]
    seq: int
    merged_from: int | None = None  # a merged delta stands for seqs merged_from..seq

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Event:
        return cls(
            frame["channel"], frame["event"], frame["data"], frame["seq"], frame.get("mergedFrom")
        )


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class Subscription:
    """An async iterator over one channel's events; it ends when the client closes or the
    channel is unsubscribed, and raises if the subscription was lost (revoked, refused)."""

    def __init__(self, channel: str, on_close: Callable[[Subscription], Awaitable[None]]) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Event | _End] = asyncio.Queue()
        self._on_close = on_close
        self._ended = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later call ends the same way
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def next(self, timeout: float | None = None) -> Event:
        """The next event, waiting at most `timeout` seconds (TimeoutError after that)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def close(self) -> None:
        """Stop listening; the client unsubscribes once no listener is left on the channel."""
        self.end()
        await self._on_close(self)

    def put(self, event: Event) -> None:
        if not self._ended:
            self._queue.put_nowait(event)

    def end(self, error: BaseException | None = None) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_End(error))
