"""A client's copy of one session built from its events alone (the Python client's
`Conversation`, protocol.md §7.4), checked for seq continuity and compared with what
`sessions.sync` returns."""

from __future__ import annotations

from typing import Any

from botical.client.conversation import Conversation


class Mirror(Conversation):
    """A `Conversation` fed raw frames of one session's channel, checking their seqs."""

    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.channel = f"session:{session_id}"
        self.seq = 0

    def apply_all(self, frames: list[dict[str, Any]]) -> Mirror:
        for frame in frames:
            if frame.get("type") == "event" and frame["channel"] == self.channel:
                first = frame.get("mergedFrom", frame["seq"])
                assert first == self.seq + 1, f"gap or repeat: {self.seq} then {first}"
                self.seq = frame["seq"]
                self.apply_data(frame["event"], frame["data"])
        return self


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


def same_as_sync(mirror: Conversation, synced: dict[str, Any]) -> None:
    """Assert the mirror shows exactly what `sessions.sync` returned."""
    for mine, theirs in ((mirror.path, synced["messages"]), (mirror.queue, synced["queue"])):
        shown, stored = view(mine), view(theirs)
        differ = [(a, b) for a, b in zip(shown, stored, strict=False) if a != b]
        assert shown == stored, f"{len(shown)} vs {len(stored)}; first differing: {differ[:1]}"
