"""The event bus: typed events with project, session and user scope.

Services publish after their change is committed; subscribers match an exact event name, a
`prefix.*` pattern or `*`. A failing subscriber is logged and never affects the others or the
publisher. Backends other than this in-process one come from the `botical_bus_backend` hook.

A subscriber that says `cluster=True` gets the matching events of every node sharing the
backend (cache invalidations, cancel and approval answers): with several nodes the backend
forwards the events those patterns match to the others. Other subscribers only see events
published on their own node; events for clients reach other nodes through the broadcaster's
channels instead, and only the channels each node's sockets watch.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botical.db.database import now_ms
from botical.metrics import DISABLED, Metrics

if TYPE_CHECKING:
    from botical.config import WebSocketSettings
    from botical.websocket.broadcaster import ChannelKind, ChannelRouter
    from botical.websocket.connections import ConnectionRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened; `data` is JSON-ready and camelCase."""

    name: str
    data: dict[str, Any]
    project_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    ts: int = field(default_factory=now_ms)


Handler = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """In-process bus: delivers each event synchronously to every matching subscriber."""

    name = "memory"
    shared = False  # whether other nodes share this bus (and its channels)
    metrics: Metrics = DISABLED  # the app's, given before its broadcaster is made

    def __init__(self) -> None:
        self._exact: dict[str, list[tuple[Handler, bool]]] = {}
        self._prefix: dict[str, list[tuple[Handler, bool]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.cluster_patterns: set[str] = set()

    def subscribe(
        self, pattern: str, handler: Handler, cluster: bool = False
    ) -> Callable[[], None]:
        """Call `handler` for events matching `pattern` (of every node with `cluster`); return
        a function that unsubscribes."""
        if cluster:
            self.cluster_patterns.add(pattern)
        if pattern == "*" or pattern.endswith(".*"):
            table, key = self._prefix, pattern[:-1]  # "*" -> "", "part.*" -> "part."
        else:
            table, key = self._exact, pattern
        entry = (handler, cluster)
        table.setdefault(key, []).append(entry)

        def unsubscribe() -> None:
            handlers = table.get(key, [])
            if entry in handlers:
                handlers.remove(entry)

        return unsubscribe

    def _handlers(self, name: str, remote: bool) -> list[Handler]:
        found = [h for h, cluster in self._exact.get(name, ()) if cluster or not remote]
        for prefix, handlers in self._prefix.items():
            if name.startswith(prefix):
                found.extend(h for h, cluster in handlers if cluster or not remote)
        return found

    def publish(self, event: Event) -> None:
        """Deliver `event` to every matching subscriber; subscriber errors are only logged."""
        self.deliver(event)

    def deliver(self, event: Event, remote: bool = False) -> None:
        """Call the subscribers of an event of this node (or, `remote`, the cluster-wide
        subscribers of an event from another node)."""
        started = time.perf_counter()
        if not remote:
            self.metrics.published(event.name).inc()
        for handler in self._handlers(event.name, remote):
            try:
                result = handler(event)
            except Exception:
                log.exception("bus subscriber %r failed on %s", handler, event.name)
                continue
            if inspect.isawaitable(result):
                self._track(result, event.name)
        self.metrics.bus_deliver.observe(time.perf_counter() - started)

    def _track(self, awaitable: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("async bus subscriber failed on %s", name)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    healthy = True  # whether the backend answers (/health/ready)

    def broadcaster(
        self, registry: ConnectionRegistry, kinds: Iterable[ChannelKind], limits: WebSocketSettings
    ) -> ChannelRouter:
        """The channels this backend carries: in memory, in this process."""
        from botical.websocket.broadcaster import Broadcaster

        return Broadcaster(
            self,
            registry,
            kinds,
            limits.replay_buffer,
            limits.max_tracked_channels,
            limits.replay_buffer_bytes,
        )

    async def connections_of(self, user_id: str, here: int) -> int:
        """Open sockets of a user on every node (`here`: on this one; the only one)."""
        return here

    def connection_counted(self, user_id: str, change: int) -> None:
        """A socket of the user opened (+1) or closed (-1) on this node."""

    async def start(self) -> None:
        """Start the backend (nothing to do in process)."""

    async def stop(self) -> None:
        """Let pending async subscribers finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
