"""Connections: each with a bounded outbound queue drained by one writer, and the registry
that maps users and channels to them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botical.auth.identity import Identity
from botical.config import WebSocketSettings
from botical.metrics import OFF, Instrument
from botical.websocket.protocol import CLOSE_TOO_SLOW, delta_frame

log = logging.getLogger(__name__)
WRITE_BATCH = 64 * 1024  # characters handed to the socket before waiting for them to go out


class Transport(Protocol):
    """What a connection needs of its socket (Tornado's WebSocketHandler provides it)."""

    def write_message(self, message: str) -> Any: ...

    def writing(self) -> bool: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


@dataclass(slots=True)
class OutFrame:
    text: str | None
    size: int
    channel: str | None = None
    part_id: str | None = None
    header_json: str = ""
    delta: str = ""
    seq: int = 0
    first_seq: int = 0

    def render(self) -> str:
        if self.text is None:  # a merged delta: rebuilt once, when written
            self.text = delta_frame(
                self.channel or "", self.header_json, self.delta, self.seq, self.first_seq
            )
        return self.text


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Connection:
    """One authenticated socket: identity, subscriptions, limits and its outbound queue."""

    def __init__(
        self,
        connection_id: str,
        identity: Identity,
        transport: Transport,
        limits: WebSocketSettings,
        merged: Instrument = OFF,
    ) -> None:
        self.id = connection_id
        self._merged = merged  # counts the deltas merged because this client fell behind
        self.identity = identity
        self.transport = transport
        self.limits = limits
        self.subscriptions: dict[str, None] = {}  # an ordered set
        self.bucket = TokenBucket(limits.rate_limit, limits.rate_burst)
        self.rejected = 0
        self.inflight: set[asyncio.Task[None]] = set()
        self.closed = False
        self._queue: deque[OutFrame] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._drained = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._parked = False  # the writer waits for frames: nothing is queued
        self._last_write: Any = None  # the latest write handed to Tornado (they finish in order)

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def queued(self) -> tuple[int, int]:
        """Frames and bytes waiting to be written."""
        return len(self._queue), self._bytes

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, text: str) -> None:
        """Queue a frame for this client."""
        if self._idle():
            self._write(text)
        else:
            self._enqueue(OutFrame(text, len(text)))

    def send_delta(
        self, channel: str, part_id: str, header_json: str, delta: str, seq: int, text: str
    ) -> None:
        """Queue a streaming delta; under pressure it merges with a queued delta of its part."""
        if self._idle():
            self._write(text)
            return
        tail = self._queue[-1] if self._queue else None
        if (
            tail is not None
            and tail.part_id == part_id
            and tail.channel == channel
            and self._under_pressure()
        ):
            tail.delta += delta
            tail.seq = seq
            tail.text = None
            tail.size += len(delta)
            self._bytes += len(delta)
            self._merged.inc()
            self._check_bounds()
            return
        self._enqueue(OutFrame(text, len(text), channel, part_id, header_json, delta, seq, seq))

    def _under_pressure(self) -> bool:
        return (
            len(self._queue) * 2 > self.limits.queue_max_messages
            or self._bytes * 2 > self.limits.queue_max_bytes
        )

    def _idle(self) -> bool:
        """Whether a frame may be written now, in the tick that published it, rather than
        wake the writer to do it a loop iteration later: the writer waits, nothing is queued,
        and the socket took every byte handed to Tornado before. This is the path of nearly
        every frame to a client that keeps up, so it allocates nothing."""
        return self._parked and not self._queue and not self.closed and not self.transport.writing()

    def _enqueue(self, frame: OutFrame) -> None:
        if self.closed:
            return
        self._queue.append(frame)
        self._bytes += frame.size
        self._check_bounds(frame.size)
        self._ready.set()

    def _check_bounds(self, newest: int = 0) -> None:
        # The newest frame's own size does not count: one big frame (a long answer's text, a
        # whole session) is no sign of a slow client, only bytes already waiting are.
        if (
            len(self._queue) > self.limits.queue_max_messages
            or self._bytes - newest > self.limits.queue_max_bytes
        ):
            log.info("connection %s cannot keep up; closing with %d", self.id, CLOSE_TOO_SLOW)
            self.close(CLOSE_TOO_SLOW, "Too slow to keep up; reconnect and resync")

    async def _write_loop(self) -> None:
        while True:
            last = self._last_write
            if last is not None and not last.done():
                # Wait once until what Tornado was handed reached the socket.
                if not await _settle(last):
                    return  # the socket closed under us; on_close cleans up
                continue
            if self.closed:
                return
            if not self._queue:
                self._drained.set()
                self._ready.clear()
                self._parked = True
                await self._ready.wait()
                self._parked = False
                continue
            # Hand Tornado what is queued, up to WRITE_BATCH characters: the queue drains as fast
            # as the socket takes frames rather than one frame per loop iteration, while what
            # waits stays here, where it can merge and is bounded (Tornado's buffer is not).
            budget = WRITE_BATCH
            while self._queue and budget > 0:
                frame = self._queue.popleft()
                self._bytes -= frame.size
                budget -= frame.size
                self._write(frame.render())

    def _write(self, text: str) -> None:
        try:
            write = self.transport.write_message(text)
        except Exception:  # the socket is closing; on_close cleans up
            return
        write.add_done_callback(_retrieve)
        self._last_write = write

    def close(self, code: int, reason: str) -> None:
        """Drop what is queued and close the socket with `code`."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._bytes = 0
        self._ready.set()
        with contextlib.suppress(Exception):
            self.transport.close(code, reason)

    async def flush(self, timeout: float) -> None:
        """Wait (bounded) until everything queued has been written."""
        if self._queue and not self.closed:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)

    def discard(self) -> None:
        """Forget everything after the socket closed: stop the writer, cancel requests."""
        self.closed = True
        self._queue.clear()
        self._ready.set()
        for task in list(self.inflight):
            task.cancel()
        self._parked = False
        if self._last_write is not None:  # the writer will not await it now
            self._last_write.cancel()
        if self._writer is not None:
            self._writer.cancel()


async def _settle(write: Any) -> bool:
    """Wait for a write; whether it succeeded (so every earlier one did: they finish in order)."""
    try:
        await write
    except Exception:
        return False
    return True


def _retrieve(write: Any) -> None:
    """Done-callback of every write: a failed one (the socket closed) is expected, not logged."""
    if not write.cancelled():
        write.exception()


class ConnectionRegistry:
    """Every open connection, by id, by user and by subscribed channel."""

    def __init__(self) -> None:
        self._by_id: dict[str, Connection] = {}
        self._by_user: dict[str, dict[Connection, None]] = {}
        self._by_channel: dict[str, dict[Connection, None]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_id.values()))

    def get(self, connection_id: str) -> Connection | None:
        return self._by_id.get(connection_id)

    def add(self, connection: Connection) -> None:
        self._by_id[connection.id] = connection
        self._by_user.setdefault(connection.user_id, {})[connection] = None

    def remove(self, connection: Connection) -> None:
        """Take the connection out of every registry."""
        self._by_id.pop(connection.id, None)
        users = self._by_user.get(connection.user_id, {})
        users.pop(connection, None)
        if not users:
            self._by_user.pop(connection.user_id, None)
        for channel in list(connection.subscriptions):
            self.unsubscribe(connection, channel)

    def for_user(self, user_id: str) -> tuple[Connection, ...]:
        return tuple(self._by_user.get(user_id, ()))

    def count_for_user(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

    def subscribe(self, connection: Connection, channel: str) -> None:
        connection.subscriptions[channel] = None
        self._by_channel.setdefault(channel, {})[connection] = None

    def unsubscribe(self, connection: Connection, channel: str) -> None:
        connection.subscriptions.pop(channel, None)
        subscribers = self._by_channel.get(channel)
        if subscribers is not None:
            subscribers.pop(connection, None)
            if not subscribers:
                del self._by_channel[channel]

    def subscribers(self, channel: str) -> tuple[Connection, ...]:
        return tuple(self._by_channel.get(channel, ()))

    def channels(self) -> list[str]:
        return list(self._by_channel)
