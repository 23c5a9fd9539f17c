"""A client's copy of one session built from its events alone, by the rules of protocol.md
§7.4 (the active path and the queue), to compare with what `sessions.sync` returns."""

from __future__ import annotations

import copy
from typing import Any


class Mirror:
    """The active path and the queue of one session, as a client applying events sees them."""

    def __init__(self, session_id: str) -> None:
        self.channel = f"session:{session_id}"
        self.path: list[dict[str, Any]] = []
        self.queue: list[dict[str, Any]] = []
        self.seq = 0

    def apply_all(self, frames: list[dict[str, Any]]) -> Mirror:
        for frame in frames:
            if frame.get("type") == "event" and frame["channel"] == self.channel:
                self.apply(frame)
        return self

    def apply(self, frame: dict[str, Any]) -> None:
        first = frame.get("mergedFrom", frame["seq"])
        assert first == self.seq + 1, f"gap or repeat: {self.seq} then {first}"
        self.seq = frame["seq"]
        data, event = frame["data"], frame["event"]
        if event in ("message.created", "message.updated"):
            self._message(data["message"], event == "message.created")
        elif event == "message.deleted":
            self._delete(data["messageId"])
        elif event == "path.changed":
            self._cut_after(data["after"])
            self.path.extend(copy.deepcopy(data["messages"]))
        elif event == "part.created":
            self._parts_of(data["part"]["messageId"]).append(dict(data["part"]))
        elif event == "part.updated":
            self._part(data)

    def _message(self, message: dict[str, Any], created: bool) -> None:
        if message["status"] == "queued":
            self._replace_or_add(self.queue, message)
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

    def _parts_of(self, message_id: str) -> list[dict[str, Any]]:
        for message in self.path + self.queue:
            if message["id"] == message_id:
                return message.setdefault("parts", [])
        raise AssertionError(f"a part of {message_id}, which this client does not show")

    def _part(self, data: dict[str, Any]) -> None:
        parts = self._parts_of(data["part"]["messageId"])
        index = next(i for i, p in enumerate(parts) if p["id"] == data["part"]["id"])
        if "delta" in data:
            parts[index]["text"] = parts[index].get("text", "") + data["delta"]
        else:
            parts[index] = dict(data["part"])

    @staticmethod
    def _replace_or_add(items: list[dict[str, Any]], message: dict[str, Any]) -> None:
        for index, item in enumerate(items):
            if item["id"] == message["id"]:
                items[index] = {**item, **message}
                return
        items.append({**message, "parts": message.get("parts", [])})


def view(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a client shows of messages: ids, order, statuses, versions, text of each part."""
    return [
        (
            m["id"],
            m["role"],
            m["parentId"],
            m["status"],
            m["finishReason"],
            m.get("versions"),
            m["usage"],
            [(p["type"], p["status"], p.get("text"), p.get("output")) for p in m["parts"]],
        )
        for m in messages
    ]


def same_as_sync(mirror: Mirror, synced: dict[str, Any]) -> None:
    """Assert the mirror shows exactly what `sessions.sync` returned."""
    for mine, theirs in ((mirror.path, synced["messages"]), (mirror.queue, synced["queue"])):
        shown, stored = view(mine), view(theirs)
        differ = [(a, b) for a, b in zip(shown, stored, strict=False) if a != b]
        assert shown == stored, (
            f"{len(shown)} vs {len(stored)} messages; first differing: {differ[:1]}"
        )
