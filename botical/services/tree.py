"""A session's messages form a tree: each message has a parent (a user message follows the
answer it replied to, an answer follows the user message it answers; the first has none).
Messages with the same parent are versions of one another (an edited question, a regenerated
answer). The session's `head_id` is the last message of the active path, the one clients show
and the model is sent; queued messages (`status: "queued"`) are in no tree until they run.

Everything here runs on the database executor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botical.db.models import Message

QUEUED = "queued"
FRONT = ("interrupt", "rollback")  # queued modes that run before plain queued messages


class Tree:
    """The parent links of a session's messages (any rows with `id`, `parent_id`, `status`)."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.rows: dict[str, Any] = {}
        self.children: dict[str | None, list[str]] = {}
        self.queued: list[Any] = []
        for row in sorted(rows, key=lambda r: r.id):
            if row.status == QUEUED:
                self.queued.append(row)
                continue
            self.rows[row.id] = row
            self.children.setdefault(row.parent_id, []).append(row.id)
        self.queued.sort(key=queue_order)

    def path(self, head: str | None) -> list[str]:
        """The ids from the first message down to `head`, inclusive."""
        ids: list[str] = []
        seen: set[str] = set()
        while head is not None and head in self.rows and head not in seen:
            seen.add(head)
            ids.append(head)
            head = self.rows[head].parent_id
        return ids[::-1]

    def versions(self, message_id: str) -> dict[str, Any]:
        """`{index, count, ids}`: the message's versions, oldest first, and which it is."""
        ids = self.children.get(self.rows[message_id].parent_id, [message_id])
        return versions(ids, message_id)

    def leaf(self, message_id: str) -> str:
        """The end of the branch below a message, following the newest version at each step."""
        while self.children.get(message_id):
            message_id = self.children[message_id][-1]
        return message_id


def queue_order(row: Any) -> tuple[int, str]:
    """Messages that interrupt or roll back run first, then the queue, each in arrival order."""
    return (0 if row.queue_mode in FRONT else 1, row.id)


def versions(ids: list[str], message_id: str) -> dict[str, Any]:
    return {"index": ids.index(message_id) + 1, "count": len(ids), "ids": list(ids)}


def path_rows(session_id: str, message_id: str) -> list[Message]:
    """The messages from the first one down to `message_id`, as model instances."""
    tree = Tree(Message.select().where(Message.session == session_id))
    return [tree.rows[i] for i in tree.path(message_id)]


def sibling_ids(session_id: str, parent_id: str | None) -> list[str]:
    """Ids of the (non-queued) messages with this parent, oldest first."""
    query = Message.select(Message.id).where(
        Message.session == session_id,
        Message.parent_id.is_null() if parent_id is None else Message.parent_id == parent_id,
        Message.status != QUEUED,
    )
    return [row.id for row in query.order_by(Message.id)]


def versions_of(message: Message) -> dict[str, Any] | None:
    """The `versions` of a stored message (None for a queued one)."""
    if message.status == QUEUED:
        return None
    return versions(sibling_ids(message.session_id, message.parent_id), message.id)


def attach_versions(session_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `versions` to message dicts (not queued ones) with one query for all of them."""
    parents = {m["parentId"] for m in messages if m["status"] != QUEUED}
    if not parents:
        return messages
    named = [p for p in parents if p is not None]
    where = Message.parent_id.in_(named) if named else None
    if None in parents:
        root = Message.parent_id.is_null()
        where = root if where is None else (where | root)
    rows = (
        Message.select(Message.id, Message.parent_id)
        .where(Message.session == session_id, Message.status != QUEUED, where)
        .order_by(Message.id)
    )
    siblings: dict[str | None, list[str]] = {}
    for row in rows:
        siblings.setdefault(row.parent_id, []).append(row.id)
    for message in messages:
        if message["status"] != QUEUED:
            ids = siblings.get(message["parentId"]) or [message["id"]]
            message["versions"] = versions(ids, message["id"])
    return messages
