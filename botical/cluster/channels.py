"""Channels shared by every node, on Redis (the model is Centrifugo's Redis engine).

Publishing to a channel is one Lua script (scripts.PUBLISH): the channel's next seq, its
bounded history, the live text of its open parts, and a PUBLISH to the nodes that listen.
Every node, the publishing one included, delivers what it receives on the channels its
sockets (or its read cache) watch, in seq order and exactly once (a seq it has seen is
dropped), serializing each publication once per channel. Replay comes from the shared
history, so a client may resume on any node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from botical.config import WebSocketSettings
from botical.websocket.broadcaster import ChannelKind, ChannelRouter
from botical.websocket.connections import Connection, ConnectionRegistry
from botical.websocket.protocol import delta_frame, event_frame

if TYPE_CHECKING:
    from botical.cluster.redisbus import RedisBus

log = logging.getLogger(__name__)
PUBLISH_BATCH = 200  # publications sent to Redis in one round trip, at most


class RedisBroadcaster(ChannelRouter):
    def __init__(
        self,
        bus: RedisBus,
        registry: ConnectionRegistry,
        kinds: Iterable[ChannelKind],
        limits: WebSocketSettings,
    ) -> None:
        super().__init__(bus, registry, kinds)
        self.redis_bus = bus
        self._history = limits.replay_buffer
        self._last: dict[str, int] = {}  # per listened channel: the last seq delivered here
        self._listening: dict[str, asyncio.Future[None]] = {}  # done once listened to
        self._confirm: dict[str, asyncio.Future[None]] = {}  # the SUBSCRIBE, acknowledged
        self._early: dict[str, list[str]] = {}  # heard while the current seq is being read
        self._watched: dict[str, int] = {}
        self._outbox: asyncio.Queue[tuple[str, str, str, str, str]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    @property
    def epoch(self) -> str:
        return self.redis_bus.epoch

    def start(self) -> None:
        super().start()
        self.redis_bus.on_channel_message = self._received
        self.redis_bus.on_subscribed = self._confirmed
        self.redis_bus.on_reset = self._reset
        self._sender = asyncio.create_task(self._send_loop())

    async def stop(self) -> None:
        await super().stop()
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)

    # -- publishing: every node, through Redis ------------------------------------------------

    def _deliver_event(self, channel: str, name: str, data_json: str, closed: str) -> None:
        body = f"e\n{name}\n{data_json}"
        self._outbox.put_nowait((channel, body, "close" if closed else "", closed, ""))

    def _deliver_delta(self, channel: str, part_id: str, header: str, delta: str) -> None:
        body = f"d\n{part_id}\n{header}\n{delta}"
        self._outbox.put_nowait((channel, body, "append", part_id, delta))

    async def _send_loop(self) -> None:
        """Send queued publications in order, a batch per round trip. What cannot be sent
        (Redis away) is dropped and the bus changes the epoch when Redis is back, so that no
        client takes its missed events for replayable ones."""
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < PUBLISH_BATCH:
                batch.append(self._outbox.get_nowait())
            started = time.perf_counter()
            try:
                await self.redis_bus.publish_batch(batch, self._history)
                self.metrics.bus_batch.observe(time.perf_counter() - started)
                self.metrics.bus_sent.inc(len(batch))
            except Exception as exc:  # never crash the node: it is unhealthy until Redis returns
                self.redis_bus.lost(exc, dropped=len(batch))

    # -- receiving: the channels this node listens to -----------------------------------------

    def _received(self, channel: str, message: str) -> None:
        seq_text, body = message.split("\n", 1)
        seq = int(seq_text)
        last = self._last.get(channel)
        if last is None:
            early = self._early.get(channel)
            if early is not None:  # subscribed, its current seq still on the way: keep it
                early.append(message)
            return
        if seq <= last:
            return  # seen already: exactly once
        self._last[channel] = seq
        self._notify(channel)
        subscribers = self._registry.subscribers(channel)
        if not subscribers:
            if channel not in self._watched:
                self._stop_listening(channel)
            return
        self.metrics.fanned_out(len(subscribers))
        kind, rest = body.split("\n", 1)
        if kind == "d":
            part_id, header, delta = rest.split("\n", 2)
            text = delta_frame(channel, header, delta, seq, seq)
            for connection in subscribers:
                connection.send_delta(channel, part_id, header, delta, seq, text)
        else:
            name, data_json = rest.split("\n", 1)
            text = event_frame(channel, name, data_json, seq)
            for connection in subscribers:
                connection.send(text)

    async def _listen(self, channel: str) -> None:
        """Listen to a channel: once this returns, the subscription is confirmed and the
        channel's seq at that moment known, so every later publication is delivered."""
        starting = self._listening.get(channel)
        if starting is None:
            starting = self._listening[channel] = asyncio.ensure_future(self._start(channel))
            starting.add_done_callback(lambda task: self._failed(channel, task))
        await asyncio.shield(starting)

    async def _start(self, channel: str) -> None:
        confirmed = self._confirm[channel] = asyncio.get_running_loop().create_future()
        early = self._early[channel] = []
        try:
            await self.redis_bus.listen(channel)
            await confirmed
            current = await self.redis_bus.current_seq(channel)
        finally:
            self._confirm.pop(channel, None)
            self._early.pop(channel, None)
        self._last.setdefault(channel, current)
        # Heard between the subscription and the reply with the seq: those above it are new.
        for message in early:
            self._received(channel, message)

    def _failed(self, channel: str, task: asyncio.Future[None]) -> None:
        if (task.cancelled() or task.exception()) and self._listening.get(channel) is task:
            del self._listening[channel]

    def _confirmed(self, channel: str) -> None:
        confirmed = self._confirm.get(channel)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def _stop_listening(self, channel: str) -> None:
        self._listening.pop(channel, None)
        self._last.pop(channel, None)
        # Unless a new subscriber made the node listen again before the UNSUBSCRIBE goes out
        self.redis_bus.unlisten(channel, lambda: channel in self._listening)

    def _reset(self) -> None:
        """Redis was lost: nothing listened to is still listened to."""
        for confirmed in self._confirm.values():
            if not confirmed.done():
                confirmed.set_exception(ConnectionError("the bus is unavailable"))
        self._listening.clear()
        self._last.clear()
        self._early.clear()
        self._watched.clear()

    # -- what clients and services ask --------------------------------------------------------

    async def subscribe(self, connection: Connection, channel: str, since: int | None) -> bool:
        await self.watch(channel)  # held while attaching: the channel has no subscriber yet
        try:
            recovered = False
            if since is not None:
                missed = await self._missed_from_history(channel, since)
                if missed is not None:
                    self.metrics.fanned_out(len(missed))
                    for seq, body in missed:
                        _send_replayed(connection, channel, seq, body)
                    recovered = True
            self._registry.subscribe(connection, channel)  # no await since the history read
        finally:
            self.unwatch(channel)
        return recovered

    async def _missed_from_history(self, channel: str, since: int) -> list[tuple[int, str]] | None:
        """The publications after `since` up to what this node delivered, from the shared
        history, or None if they cannot all be had (the client then syncs)."""
        for _ in range(3):
            items = [_parsed(item) for item in await self.redis_bus.history(channel)]
            current = self._last[channel]
            if since > current:
                return None  # a seq of another epoch, or never given out
            wanted = [(seq, body) for seq, body in items if since < seq <= current]
            if len(wanted) == current - since:  # seqs are contiguous in the history
                return wanted
            if items and items[-1][0] >= current:
                return None  # the history no longer reaches back that far
            # This node already saw seqs the read did not return (replies and publications
            # travel on different connections): read again.
        return None

    async def current_seq(self, channel: str) -> int:
        last = self._last.get(channel)
        return last if last is not None else await self.redis_bus.current_seq(channel)

    async def snapshot(self, channel: str) -> tuple[int, dict[str, str]]:
        return await self.redis_bus.snapshot(channel)

    async def watch(self, channel: str) -> None:
        await self._listen(channel)
        self._watched[channel] = self._watched.get(channel, 0) + 1

    def unwatch(self, channel: str) -> None:
        count = self._watched.get(channel, 0) - 1
        if count > 0:
            self._watched[channel] = count
        else:
            self._watched.pop(channel, None)


def _parsed(item: str) -> tuple[int, str]:
    seq, body = item.split("\n", 1)
    return int(seq), body


def _send_replayed(connection: Connection, channel: str, seq: int, body: str) -> None:
    kind, rest = body.split("\n", 1)
    if kind == "d":
        part_id, header, delta = rest.split("\n", 2)
        text = delta_frame(channel, header, delta, seq, seq)
        connection.send_delta(channel, part_id, header, delta, seq, text)
    else:
        name, data_json = rest.split("\n", 1)
        connection.send(event_frame(channel, name, data_json, seq))
