"""Bus -> channels. Each event is routed to its channels, given the next `seq` of each,
serialized once per channel, kept in that channel's replay buffer and queued to subscribers."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

from botical.bus import Event, EventBus
from botical.websocket.connections import Connection, ConnectionRegistry
from botical.websocket.protocol import delta_frame, event_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelKind:
    """A kind of channel, `prefix:{id}`, registered through `botical_register_channels`.

    `route(event)` returns the ids of this kind an event belongs to; `authorize(app, identity,
    id)` raises FORBIDDEN (or NOT_FOUND) when the identity may not subscribe. `events` maps the
    name of each event the channel carries to the marshmallow schema of its data, which
    `system.describe` publishes (a sequence of names: not described).
    """

    prefix: str
    route: Callable[[Event], Iterable[str]]
    authorize: Callable[..., Any]
    events: Mapping[str, type[Schema] | None] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.events, Mapping):
            object.__setattr__(self, "events", dict.fromkeys(self.events))


@dataclass
class _Buffered:
    seq: int
    text: str
    delta: tuple[str, str, str] | None = None  # (part id, header json, delta) for merging


@dataclass
class ChannelState:
    seq: int = 0
    buffer: deque[_Buffered] = field(default_factory=deque)
    size: int = 0  # memory the buffered frames hold


def _size(item: _Buffered) -> int:
    return sys.getsizeof(item.text)


class ChannelRouter:
    """Bus -> channels: which channels an event goes to, serialized once per channel; the
    backend's subclass gives each channel's events their seq and delivers them.

    What the rest of Botical asks of any backend: `subscribe` (with replay), `current_seq`,
    `snapshot` (seq and live text together, for `sessions.sync`), `watch` (a channel this
    node must hear about though no socket subscribed: the read cache's sessions), `epoch`,
    and `listeners`, told of every publication on a channel this node hears.
    """

    def __init__(self, bus: EventBus, registry: ConnectionRegistry, kinds: Iterable[ChannelKind]):
        self._epoch = ""
        self._bus = bus
        self._registry = registry
        self.kinds = {k.prefix: k for k in kinds}
        self.listeners: list[Callable[[str], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.metrics = bus.metrics

    @property
    def epoch(self) -> str:
        """Changes when seqs start again: a client's seqs of another epoch cannot be resumed."""
        return self._epoch

    def start(self) -> None:
        self._unsubscribe = self._bus.subscribe("*", self.publish)

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    def channels_for(self, event: Event) -> list[str]:
        """Every channel an event goes to, each once."""
        out: dict[str, None] = {}
        for prefix, kind in self.kinds.items():
            for ident in kind.route(event):
                out[f"{prefix}:{ident}"] = None
        return list(out)

    def publish(self, event: Event) -> None:
        """Deliver one bus event (of this node) to every channel it belongs to."""
        channels = self.channels_for(event)
        if not channels:
            return
        data = event.data
        if event.name == "part.updated" and "delta" in data:
            header = json.dumps(data["part"], separators=(",", ":"), ensure_ascii=False)
            for channel in channels:
                self._deliver_delta(channel, data["part"]["id"], header, data["delta"])
            return
        data_json = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        closed = data["part"]["id"] if event.name == "part.updated" else ""
        for channel in channels:
            self._deliver_event(channel, event.name, data_json, closed)

    def _notify(self, channel: str) -> None:
        for listener in self.listeners:
            listener(channel)

    def _deliver_event(self, channel: str, name: str, data_json: str, closed: str) -> None:
        """Publish an event on a channel (`closed`: the id of a part that stops streaming)."""
        raise NotImplementedError

    def _deliver_delta(self, channel: str, part_id: str, header: str, delta: str) -> None:
        raise NotImplementedError

    async def subscribe(self, connection: Connection, channel: str, since: int | None) -> bool:
        """Subscribe a connection; with `since`, first replay what it missed. Returns whether
        the missed events could all be replayed (`recovered`); nothing falls between."""
        raise NotImplementedError

    async def current_seq(self, channel: str) -> int:
        """The last seq given out on a channel (the next event gets this + 1)."""
        raise NotImplementedError

    async def snapshot(self, channel: str) -> tuple[int, dict[str, str]]:
        """The channel's seq and, taken with it, the text streamed so far into each of its
        open parts, by part id: a client that reads the rest of the state after this and
        applies events above the seq misses nothing."""
        raise NotImplementedError

    async def watch(self, channel: str) -> None:
        """Hear about a channel's publications (`listeners`) until `unwatch`."""

    def unwatch(self, channel: str) -> None:
        """Stop watching a channel."""


class Broadcaster(ChannelRouter):
    """The in-process backend: seq, replay buffer and live text of each channel in memory."""

    def __init__(
        self,
        bus: EventBus,
        registry: ConnectionRegistry,
        kinds: Iterable[ChannelKind],
        replay_size: int,
        max_channels: int,
        replay_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        super().__init__(bus, registry, kinds)
        self._epoch = secrets.token_hex(8)  # seqs restart with the process
        self._replay_size = replay_size
        self._replay_bytes = replay_bytes
        self._max_channels = max_channels
        self._states: OrderedDict[str, ChannelState] = OrderedDict()
        # Channels with buffered events, the one that buffered least recently first: when the
        # buffers together hold more than `replay_bytes`, their oldest events go first.
        self._buffering: OrderedDict[str, None] = OrderedDict()
        self.buffered_bytes = 0
        # The highest seq of any forgotten channel: a channel created again starts above it, so
        # a client holding one of its old seqs is never told it recovered.
        self._seq_floor = 0
        self._live: dict[str, dict[str, list[str]]] = {}  # channel -> open part -> deltas

    def _deliver_event(self, channel: str, name: str, data_json: str, closed: str) -> None:
        seq = self._next(channel)
        text = event_frame(channel, name, data_json, seq)
        self._remember(channel, _Buffered(seq, text))
        if closed:
            live = self._live.get(channel)
            if live is not None and live.pop(closed, None) is not None and not live:
                del self._live[channel]
        self._notify(channel)
        subscribers = self._registry.subscribers(channel)
        self.metrics.fanned_out(len(subscribers))
        for connection in subscribers:
            connection.send(text)

    def _deliver_delta(self, channel: str, part_id: str, header: str, delta: str) -> None:
        seq = self._next(channel)
        text = delta_frame(channel, header, delta, seq, seq)
        self._remember(channel, _Buffered(seq, text, (part_id, header, delta)))
        self._live.setdefault(channel, {}).setdefault(part_id, []).append(delta)
        self._notify(channel)
        subscribers = self._registry.subscribers(channel)
        self.metrics.fanned_out(len(subscribers))
        for connection in subscribers:
            connection.send_delta(channel, part_id, header, delta, seq, text)

    async def subscribe(self, connection: Connection, channel: str, since: int | None) -> bool:
        return self.attach(connection, channel, since)

    async def current_seq(self, channel: str) -> int:
        return self.seq(channel)

    async def snapshot(self, channel: str) -> tuple[int, dict[str, str]]:
        live = self._live.get(channel, {})
        return self.seq(channel), {part: "".join(chunks) for part, chunks in live.items()}

    def _state(self, channel: str) -> ChannelState:
        state = self._states.get(channel)
        if state is None:
            state = self._states[channel] = ChannelState(seq=self._seq_floor)
            if len(self._states) > self._max_channels:
                name, forgotten = self._states.popitem(last=False)  # the least recently used
                self._seq_floor = max(self._seq_floor, forgotten.seq)
                self.buffered_bytes -= forgotten.size
                self._buffering.pop(name, None)
        else:
            self._states.move_to_end(channel)
        return state

    def _next(self, channel: str) -> int:
        state = self._state(channel)
        state.seq += 1
        return state.seq

    def _remember(self, channel: str, item: _Buffered) -> None:
        if not self._replay_size:
            return
        state = self._states[channel]
        state.buffer.append(item)
        size = _size(item)
        state.size += size
        self.buffered_bytes += size
        self._buffering[channel] = None
        self._buffering.move_to_end(channel)
        if len(state.buffer) > self._replay_size:
            self._drop_oldest(channel, state)
        while self.buffered_bytes > self._replay_bytes and self._buffering:
            oldest = next(iter(self._buffering))
            self._drop_oldest(oldest, self._states[oldest])

    def _drop_oldest(self, channel: str, state: ChannelState) -> None:
        size = _size(state.buffer.popleft())
        state.size -= size
        self.buffered_bytes -= size
        if not state.buffer:
            del self._buffering[channel]

    def seq(self, channel: str) -> int:
        """The last seq given out on a channel (the next event gets this + 1)."""
        state = self._states.get(channel)
        return state.seq if state else self._seq_floor

    def attach(self, connection: Connection, channel: str, since: int | None) -> bool:
        """Subscribe a connection; with `since`, first replay what it missed.

        Returns whether the missed events could be replayed (`recovered`). The replay is queued
        before the subscription takes effect, in the same tick, so nothing falls between.
        """
        recovered = False
        if since is not None:
            missed = self._missed(channel, since)
            if missed is not None:
                self.metrics.fanned_out(len(missed))
                for item in missed:
                    if item.delta:
                        part_id, header, delta = item.delta
                        connection.send_delta(channel, part_id, header, delta, item.seq, item.text)
                    else:
                        connection.send(item.text)
                recovered = True
        self._registry.subscribe(connection, channel)
        return recovered

    def _missed(self, channel: str, since: int) -> list[_Buffered] | None:
        state = self._states.get(channel)
        current = state.seq if state else self._seq_floor
        if since > current:
            return None  # from another epoch, or a seq we never gave out
        if since == current:
            return []
        if state is None or not state.buffer or state.buffer[0].seq > since + 1:
            return None  # the buffer no longer holds all of them
        return [item for item in state.buffer if item.seq > since]
