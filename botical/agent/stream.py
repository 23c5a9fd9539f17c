"""Provider stream -> parts and events. Deltas are published at once; text reaches the database
in batches (every `flush_interval` seconds and when a part closes), never once per token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import Part
from botical.ids import new_id


def _header(part: dict[str, Any]) -> dict[str, Any]:
    """The part without its text, as delta events carry it."""
    return {k: v for k, v in part.items() if k != "text"}


class PartRecorder:
    """Owns the parts of one assistant message while a run writes them."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        project_id: str,
        session_id: str,
        message_id: str,
        flush_interval: float,
        stored: Callable[[str], None] = lambda session_id: None,
    ) -> None:
        self._db = db
        self._stored = stored  # told after text is written without an event (a flush)
        self._bus = bus
        self._project_id = project_id
        self._session_id = session_id
        self._message_id = message_id
        self._flush_interval = flush_interval
        self.parts: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._open_header: dict[str, Any] = {}
        self._chunks: list[str] = []
        self._dirty = False
        self._last_flush = time.monotonic()

    def _publish(self, name: str, data: dict[str, Any]) -> None:
        self._bus.publish(
            Event(name, data, project_id=self._project_id, session_id=self._session_id)
        )

    async def add(self, type_: str, status: str | None, content: dict[str, Any]) -> dict[str, Any]:
        """Create a part after the ones so far, store it, and announce it."""
        now = now_ms()
        part = {
            "id": new_id("part"),
            "messageId": self._message_id,
            "sessionId": self._session_id,
            "type": type_,
            "position": len(self.parts),
            "status": status,
            **content,
            "createdAt": now,
            "updatedAt": now,
        }
        await self._db.run(
            lambda: Part.insert(
                id=part["id"],
                message=self._message_id,
                session=self._session_id,
                type=type_,
                position=part["position"],
                status=status,
                content=content,
                created_at=now,
                updated_at=now,
            ).execute()
        )
        self.parts.append(part)
        self._publish("part.created", {"part": dict(part)})  # a snapshot: `part` keeps changing
        return part

    async def delta(self, kind: str, text: str) -> None:
        """Append streamed text or reasoning, opening a new part when the kind changes."""
        if self._open is None or self._open["type"] != kind:
            await self.close_open()
            self._open = await self.add(kind, "streaming", {"text": ""})
            self._open_header = _header(self._open)
            self._chunks = []
        self._chunks.append(text)
        self._dirty = True
        self._publish("part.updated", {"part": self._open_header, "delta": text})
        if time.monotonic() - self._last_flush >= self._flush_interval:
            await self.flush()

    async def flush(self) -> None:
        """Write the open part's text so far (one UPDATE)."""
        self._last_flush = time.monotonic()
        if self._open is None or not self._dirty:
            return
        self._dirty = False
        self._open["text"] = "".join(self._chunks)
        await self._write(self._open)
        self._stored(self._session_id)

    async def close_open(self, status: str = "completed") -> None:
        """Finish the streaming part: store its whole text and announce it with `status`
        (`completed`, or how the run ended when it stopped mid-part)."""
        if self._open is None:
            return
        part, self._open = self._open, None
        part["text"] = "".join(self._chunks)
        part["status"] = status
        part["updatedAt"] = now_ms()
        self._dirty = False
        await self._write(part)
        self._publish("part.updated", {"part": dict(part)})

    async def update(self, part: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Change a (non-streaming) part, store it and announce it."""
        part.update(changes, updatedAt=now_ms())
        await self._write(part)
        self._publish("part.updated", {"part": dict(part)})
        return part

    async def _write(self, part: dict[str, Any]) -> None:
        content = {k: v for k, v in part.items() if k not in _COLUMNS}
        await self._db.run(
            lambda: (
                Part.update(status=part["status"], content=content, updated_at=part["updatedAt"])
                .where(Part.id == part["id"])
                .execute()
            )
        )

    def live_text(self) -> dict[str, str]:
        """`{part id: text so far}` of the part streaming now (its stored text may lag)."""
        return {self._open["id"]: "".join(self._chunks)} if self._open is not None else {}

    def step_text(self) -> str:
        """Text streamed since the last `step_start` part."""
        texts: list[str] = []
        for part in reversed(self.parts):
            if part["type"] == "step_start":
                break
            if part["type"] == "text":
                texts.append(part.get("text", ""))
        return "".join(reversed(texts))


_COLUMNS = frozenset(
    {"id", "messageId", "sessionId", "type", "position", "status", "createdAt", "updatedAt"}
)
