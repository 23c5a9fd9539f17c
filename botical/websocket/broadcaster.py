"""Bus -> channels. Each event is routed to its channels, given the next `seq` of each,
serialized once per channel, kept in that channel's replay buffer and queued to subscribers."""

from __future__ import annotations

import json
import logging
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


class Broadcaster:
    def __init__(
        self,
        bus: EventBus,
        registry: ConnectionRegistry,
        kinds: Iterable[ChannelKind],
        replay_size: int,
        max_channels: int,
        replay_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._bus = bus
        self._registry = registry
        self.kinds = {k.prefix: k for k in kinds}
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
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self._bus.subscribe("*", self.publish)

    def stop(self) -> None:
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
        """Deliver one bus event to every channel it belongs to."""
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
        for channel in channels:
            seq = self._next(channel)
            text = event_frame(channel, event.name, data_json, seq)
            self._remember(channel, _Buffered(seq, text))
            for connection in self._registry.subscribers(channel):
                connection.send(text)

    def _deliver_delta(self, channel: str, part_id: str, header: str, delta: str) -> None:
        seq = self._next(channel)
        text = delta_frame(channel, header, delta, seq, seq)
        self._remember(channel, _Buffered(seq, text, (part_id, header, delta)))
        for connection in self._registry.subscribers(channel):
            connection.send_delta(channel, part_id, header, delta, seq, text)

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
