"""The event bus: typed events with project, session and user scope.

Services publish after their change is committed; subscribers match an exact event name, a
`prefix.*` pattern or `*`. A failing subscriber is logged and never affects the others or the
publisher. Backends other than this in-process one come from the `botical_bus_backend` hook.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from botical.db.database import now_ms

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

    def __init__(self) -> None:
        self._exact: dict[str, list[Handler]] = {}
        self._prefix: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, pattern: str, handler: Handler) -> Callable[[], None]:
        """Call `handler` for events matching `pattern`; return a function that unsubscribes."""
        if pattern == "*" or pattern.endswith(".*"):
            table, key = self._prefix, pattern[:-1]  # "*" -> "", "part.*" -> "part."
        else:
            table, key = self._exact, pattern
        table.setdefault(key, []).append(handler)

        def unsubscribe() -> None:
            handlers = table.get(key, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def _handlers(self, name: str) -> list[Handler]:
        found = list(self._exact.get(name, ()))
        for prefix, handlers in self._prefix.items():
            if name.startswith(prefix):
                found.extend(handlers)
        return found

    def publish(self, event: Event) -> None:
        """Deliver `event` to every matching subscriber; subscriber errors are only logged."""
        for handler in self._handlers(event.name):
            try:
                result = handler(event)
            except Exception:
                log.exception("bus subscriber %r failed on %s", handler, event.name)
                continue
            if inspect.isawaitable(result):
                self._track(result, event.name)

    def _track(self, awaitable: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("async bus subscriber failed on %s", name)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start the backend (nothing to do in process)."""

    async def stop(self) -> None:
        """Let pending async subscribers finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
