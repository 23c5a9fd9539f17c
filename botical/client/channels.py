"""The client's channels: per channel the last seq handed to the caller, frames held back
while it is resumed, replay with `since` after a reconnect, `sessions.sync` when replay is
not possible, and the listeners (docs/protocol.md section 8.5; docs/client.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from botical.client.errors import (
    ClientClosed,
    ClientError,
    ConnectionLost,
    Timeout,
    error_from_payload,
)
from botical.client.events import RESET, SYNCED, ConnectionState, Event, Subscription

if TYPE_CHECKING:
    from botical.client.client import BoticalClient

log = logging.getLogger(__name__)

DELIVER, DUPLICATE, GAP = "deliver", "duplicate", "gap"


class ChannelState:
    """Per channel: the last seq handed to the caller, frames held back during a resync,
    and the listeners."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_seq: int | None = None
        self.held: list[dict[str, Any]] | None = []  # a list while holding frames back
        self.listeners: list[Subscription] = []
        self.active = False  # the server acknowledged it at least once
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def session_id(self) -> str | None:
        kind, _, ident = self.name.partition(":")
        return ident if kind == "session" else None

    def verdict(self, frame: dict[str, Any]) -> str:
        """DELIVER (and advance), DUPLICATE (already handed over) or GAP (events missing)."""
        seq = frame["seq"]
        first = frame.get("mergedFrom", seq)
        if self.last_seq is not None and seq <= self.last_seq:
            return DUPLICATE
        if self.last_seq is not None and first > self.last_seq + 1:
            return GAP
        self.last_seq = seq
        return DELIVER

    def deliver(self, event: Event) -> None:
        for listener in self.listeners:
            listener.put(event)

    def end(self, error: BaseException | None = None) -> None:
        for listener in self.listeners:
            listener.end(error)
        self.listeners.clear()


class Channels:
    """Every channel of one client; the client calls in when sockets open and drop."""

    def __init__(self, client: BoticalClient) -> None:
        self._client = client
        self._states: dict[str, ChannelState] = {}

    async def subscribe(self, channel: str, timeout: float | None = None) -> Subscription:
        """Subscribe to `channel` (`session:ID`, `project:ID`, `user:ID`) and return an async
        iterator of its events. Raises the server's error (e.g. `Forbidden`) if refused."""
        listener = Subscription(channel, self._listener_closed)
        state = self._states.get(channel)
        if state is not None:  # already subscribed, or being subscribed: share it
            state.listeners.append(listener)
            try:
                await asyncio.wait_for(asyncio.shield(state.ready), timeout)
            except BaseException:
                listener.end()
                raise
            return listener
        state = self._states[channel] = ChannelState(channel)
        state.listeners.append(listener)
        try:
            await self._first_subscribe(state, timeout)
        except BaseException as exc:
            self._forget(state, exc if isinstance(exc, ClientError) else None)
            if isinstance(exc, ClientError):
                state.ready.set_exception(exc)
                state.ready.exception()  # retrieved: other waiters see it, nobody is warned
            else:
                state.ready.cancel()
            raise
        state.ready.set_result(None)
        return listener

    async def unsubscribe(self, channel: str, timeout: float | None = None) -> None:
        """Stop a channel: its iterators end, and it is not resumed after a reconnect."""
        state = self._states.pop(channel, None)
        if state is None:
            return
        state.end()
        if self._client.state is ConnectionState.CONNECTED:
            frame = {"type": "unsubscribe", "channels": [channel]}
            with contextlib.suppress(ConnectionLost, ClientClosed):  # next socket won't have it
                await self._client._call(frame, timeout, "unsubscribe")

    def connected(self, previous_epoch: str | None) -> None:
        """A socket opened: after a reconnect, subscribe every channel again."""
        if any(state.active for state in self._states.values()):
            self._client._spawn(self._resubscribe(self._client._generation, previous_epoch))

    def lost(self) -> None:
        """The socket dropped: hold every channel until the next socket resumes it."""
        for state in self._states.values():
            if state.active:
                state.held = []  # the next socket replays or resyncs from state.last_seq

    def finish(self, error: ClientError | None) -> None:
        """The client closed for good: end every subscription."""
        for state in self._states.values():
            state.end(error)
        self._states.clear()

    def on_connection_event(self, frame: dict[str, Any]) -> None:
        """A `connection` event: a revoked subscription ends its channel."""
        data = frame.get("data") or {}
        if frame.get("event") == "subscription.revoked":
            state = self._states.get(data.get("channel", ""))
            if state is not None:
                self._forget(state, error_from_payload(data.get("error")))

    # -- channels: dedupe, replay, resync --------------------------------------------------

    def on_event(self, frame: dict[str, Any]) -> None:
        """A channel event: hand it over, drop it, or hold it during a resync."""
        state = self._states.get(frame.get("channel", ""))
        if state is None:
            return
        if state.held is not None:
            state.held.append(frame)
        else:
            self._apply(state, frame)

    def _apply(self, state: ChannelState, frame: dict[str, Any]) -> None:
        verdict = state.verdict(frame)
        if verdict == DELIVER:
            state.deliver(Event.from_frame(frame))
        elif verdict == GAP:
            log.info("%s: gap after seq %s; resyncing", state.name, state.last_seq)
            state.held = [frame]
            if state.session_id:
                self._client._spawn(self._resync(state, self._client._generation))
            else:
                self._reset(state, frame.get("mergedFrom", frame["seq"]) - 1, "gap")

    def _release(self, state: ChannelState) -> None:
        """Stop holding: apply the held frames in order (a new gap starts a new hold)."""
        held, state.held = state.held or [], None
        for index, frame in enumerate(held):
            if state.held is not None:
                state.held.extend(held[index:])
                return
            self._apply(state, frame)

    def _reset(self, state: ChannelState, seq: int, reason: str) -> None:
        state.last_seq = seq
        state.deliver(Event(state.name, RESET, {"channel": state.name, "reason": reason}, seq))
        self._release(state)

    async def _resync(self, state: ChannelState, generation: int) -> None:
        """Replace a session channel's history with `sessions.sync`; continue after its seq."""
        try:
            result = await self._client.request("sessions.sync", sessionId=state.session_id)
        except (ConnectionLost, ClientClosed):
            return  # the next socket resumes from state.last_seq
        except Timeout:
            self._client.drop_connection()
            return
        except ClientError as exc:  # the session is gone or no longer visible
            self._forget(state, exc)
            return
        if generation != self._client._generation or self._states.get(state.name) is not state:
            return
        state.last_seq = result["seq"]
        state.deliver(Event(state.name, SYNCED, result, result["seq"]))
        self._release(state)

    async def _first_subscribe(self, state: ChannelState, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._client.request_timeout if timeout is None else timeout)
        frame = {"type": "subscribe", "channels": [state.name]}
        while True:
            state.held = []
            try:
                response = await self._client._call(
                    frame, max(0.0, deadline - loop.time()), "subscribe"
                )
                break
            except ConnectionLost:
                continue  # subscribing is idempotent: try again on the next socket
        if "error" in response:
            raise error_from_payload(response["error"])
        result = response["result"]
        if result["rejected"]:
            raise error_from_payload(result["rejected"][0]["error"])
        state.last_seq = result["subscribed"][0]["seq"]
        state.active = True
        self._release(state)

    async def _resubscribe(self, generation: int, previous_epoch: str | None) -> None:
        """After a reconnect: one subscribe for every channel, with `since` when the epoch is
        the same; each channel not recovered is resynced."""
        states = [state for state in self._states.values() if state.active]
        frame: dict[str, Any] = {"type": "subscribe", "channels": [s.name for s in states]}
        if previous_epoch is not None and previous_epoch == self._client.epoch:
            frame["since"] = {s.name: s.last_seq for s in states if s.last_seq is not None}
            frame["epoch"] = self._client.epoch
        try:
            response = await self._client._call(frame, None, "subscribe")
        except (ConnectionLost, ClientClosed):
            return
        except Timeout:
            self._client.drop_connection()
            return
        if generation != self._client._generation:
            return
        if "error" in response:
            log.warning("re-subscribing failed: %s; reconnecting", response["error"])
            self._client.drop_connection()
            return
        for entry in response["result"]["subscribed"]:
            state = self._states.get(entry["channel"])
            if state is None or state.held is None:
                continue
            if entry["recovered"]:
                self._release(state)
            elif state.session_id:
                self._client._spawn(self._resync(state, generation))
            else:
                self._reset(state, entry["seq"], "not_recovered")
        for entry in response["result"]["rejected"]:
            if (state := self._states.get(entry["channel"])) is not None:
                self._forget(state, error_from_payload(entry["error"]))

    def _forget(self, state: ChannelState, error: ClientError | None) -> None:
        if self._states.get(state.name) is state:
            del self._states[state.name]
        state.end(error)

    async def _listener_closed(self, listener: Subscription) -> None:
        state = self._states.get(listener.channel)
        if state is None or listener not in state.listeners:
            return
        state.listeners.remove(listener)
        if not state.listeners:
            await self.unsubscribe(listener.channel)
