"""`Conversation`: what one session shows, kept from its events by the rules of protocol.md
§7.4: the active path (each message with its parts and versions) and the queue of messages
waiting to run. Feed it a `sessions.sync` result (or a `session.synced` event) and then every
event of the session's channel, in order; it then holds exactly what the server holds."""

from __future__ import annotations

import copy
from typing import Any

from botical.client.events import SYNCED, Event

Message = dict[str, Any]


class Conversation:
    """The active path and the queue of one session."""

    def __init__(self, synced: dict[str, Any] | None = None) -> None:
        self.path: list[Message] = []
        self.queue: list[Message] = []
        if synced is not None:
            self.load(synced)

    def load(self, synced: dict[str, Any]) -> None:
        """Replace everything with a `sessions.sync` result."""
        self.path = copy.deepcopy(synced["messages"])
        self.queue = copy.deepcopy(synced["queue"])

    def apply(self, event: Event) -> None:
        """Apply one event of the session's channel (others are ignored)."""
        self.apply_data(event.event, event.data)

    def apply_data(self, name: str, data: dict[str, Any]) -> None:
        """Apply an event given by its name and data (a raw frame's `event` and `data`)."""
        if name == SYNCED:
            self.load(data)
        elif name in ("message.created", "message.updated"):
            self._message(data["message"], name == "message.created")
        elif name == "message.deleted":
            self._delete(data["messageId"])
        elif name == "path.changed":
            self._cut_after(data["after"])
            self.path.extend(copy.deepcopy(data["messages"]))
        elif name == "part.created":
            self.parts_of(data["part"]["messageId"]).append(dict(data["part"]))
        elif name == "part.updated":
            self._part(data)

    def find(self, message_id: str) -> Message | None:
        """A message shown on the path or waiting in the queue."""
        return next((m for m in self.path + self.queue if m["id"] == message_id), None)

    def parts_of(self, message_id: str) -> list[dict[str, Any]]:
        found = self.find(message_id)
        if found is None:
            raise KeyError(f"{message_id} is neither on the path nor in the queue")
        return found.setdefault("parts", [])

    def other_version(self, message_id: str, step: int) -> str | None:
        """The id of the version `step` places away (-1: the previous one, 1: the next), for
        `messages.select`; None at either end."""
        found = self.find(message_id)
        versions = (found or {}).get("versions")
        if not versions:
            return None
        index = versions["index"] - 1 + step
        return versions["ids"][index] if 0 <= index < versions["count"] else None

    def _message(self, message: Message, created: bool) -> None:
        if message["status"] == "queued":
            current = next((m for m in self.queue if m["id"] == message["id"]), None)
            if current is None:
                self.queue.append({**message, "parts": message.get("parts", [])})
            else:
                current.update(message)
            return
        waiting = next((m for m in self.queue if m["id"] == message["id"]), None)
        self.queue = [m for m in self.queue if m["id"] != message["id"]]
        shown = next((m for m in self.path if m["id"] == message["id"]), None)
        if shown is not None and not created:
            shown.update(message)  # in place; its parts stay
            return
        parts = (waiting or shown or {}).get("parts", [])
        self._cut_after(message["parentId"])
        self.path.append({**message, "parts": parts})

    def _delete(self, message_id: str) -> None:
        self.queue = [m for m in self.queue if m["id"] != message_id]
        ids = [m["id"] for m in self.path]
        if message_id in ids:
            del self.path[ids.index(message_id) :]

    def _cut_after(self, message_id: str | None) -> None:
        ids = [m["id"] for m in self.path]
        del self.path[(ids.index(message_id) + 1 if message_id in ids else 0) :]

    def _part(self, data: dict[str, Any]) -> None:
        parts = self.parts_of(data["part"]["messageId"])
        index = next(i for i, p in enumerate(parts) if p["id"] == data["part"]["id"])
        if "delta" in data:
            parts[index]["text"] = parts[index].get("text", "") + data["delta"]
        else:
            parts[index] = dict(data["part"])
