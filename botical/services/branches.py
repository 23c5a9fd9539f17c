"""Versions and forks of a conversation (its message tree, `services.tree`).

`BranchService` does what clients ask directly: show another version (`select`) and copy the
path up to a message into a new session (`fork`). The other functions run inside a
transaction the runner holds, with the session locked (`messages.lock_session`): where an
edit or a retry starts, and what a rollback removes.
"""

from __future__ import annotations

from typing import Any

from botical.db import Database
from botical.db.models import Message, Part, Run, Session
from botical.errors import Conflict, NotFound, ValidationError
from botical.ids import new_id
from botical.services.messages import (
    MessageService,
    lock_session,
    move_head,
    with_parts,
)
from botical.services.sessions import SessionService, session_to_dict
from botical.services.todos import store_todos, todos_as_of
from botical.services.tree import QUEUED, Tree

BATCH = 100  # rows per INSERT when copying a path into a fork
COPIED_COLUMNS = (
    "role",
    "created_by",
    "agent",
    "model",
    "status",
    "finish_reason",
    "error",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "created_at",
    "updated_at",
)


def _message(session: Session, message_id: str, missing: str = "Message not found") -> Message:
    message = Message.get_or_none(Message.id == message_id, Message.session == session.id)
    if message is None or message.status == QUEUED:
        raise NotFound(missing)
    return message


def edit_point(session: Session, message_id: str) -> Message:
    """The user message an edit makes a new version of."""
    message = _message(session, message_id)
    if message.role != "user":
        raise ValidationError(details={"messageId": ["Only a user message can be edited."]})
    return message


def _question(session: Session, message_id: str | None) -> Message:
    missing = "No user message to retry"
    if message_id:
        message = _message(session, message_id, missing)
        if message.role != "user":
            message = _message(session, message.parent_id or "", missing)
        return message
    tree = Tree(Message.select().where(Message.session == session.id))
    questions = [i for i in tree.path(session.head_id) if tree.rows[i].role == "user"]
    if not questions:
        raise NotFound(missing)
    return tree.rows[questions[-1]]


def retry_question(session_id: str, message_id: str | None) -> Message:
    """The user message a retry would answer again (a read, before the retry itself): the one
    named, the question of the answer named, or the last user message of the active path."""
    session = Session.get_or_none(Session.id == session_id)
    if session is None:
        raise NotFound("Session not found")
    return _question(session, message_id)


def retry_point(session: Session, message_id: str | None) -> Message:
    """The user message a retry answers again (see `retry_question`); it becomes the head."""
    message = _question(session, message_id)
    move_head(session.id, message.id)
    return message


def branch(tree: Tree, ids: list[str]) -> list[dict[str, Any]]:
    """Messages of a tree (built from model instances) with their parts and versions."""
    rows = [tree.rows[i] for i in ids]  # path order: a queued message joins it late
    return [{**m, "versions": tree.versions(m["id"])} for m in with_parts(rows)]


def roll_back(session: Session, run_id: str) -> tuple[list[Message], str | None, list[dict]]:
    """Remove the answer of a stopped run, and the message it answered when that message was
    sent for this run; return what was removed and, when the path then shows another version
    of the answer, `(after, messages)` of that change (else `(None, [])`). Nothing happens
    when something already follows the answer (it was kept, as by an interrupt)."""
    answer = Message.get_or_none(
        Message.session == session.id, Message.run_id == run_id, Message.role == "assistant"
    )
    if answer is None or session.head_id != answer.id:
        return [], None, []
    question = Message.get_or_none(Message.id == answer.parent_id)
    removed = [answer]
    if question is not None and question.run_id == run_id:
        removed.append(question)
    Message.delete().where(Message.id.in_([m.id for m in removed])).execute()
    if question is None or question in removed:
        move_head(session.id, question.parent_id if question else None)
        return removed, None, []
    tree = Tree(Message.select().where(Message.session == session.id))
    leaf = tree.leaf(question.id)
    move_head(session.id, leaf)
    below = tree.path(leaf)[len(tree.path(question.id)) :]
    return removed, (question.id if below else None), branch(tree, below)


class BranchService:
    def __init__(self, db: Database, messages: MessageService, sessions: SessionService):
        self._db = db
        self._messages = messages
        self._sessions = sessions

    async def select(self, session_id: str, message_id: str) -> dict[str, Any]:
        """Show another version of a message: the path goes through it, then down its newest
        branch. A message already on the active path changes nothing."""

        def apply() -> tuple[bool, dict[str, Any], str]:
            session = lock_session(session_id, active=False)
            if Run.select().where(Run.session == session_id).exists():
                raise Conflict("A run is in progress in this session")
            tree = Tree(Message.select().where(Message.session == session_id))
            if message_id not in tree.rows:
                raise NotFound("Message not found")
            current = tree.path(session.head_id)
            head = session.head_id if message_id in current else tree.leaf(message_id)
            path = tree.path(head)
            below = path[path.index(message_id) :]
            if head != session.head_id:
                move_head(session_id, head)
            after = tree.rows[message_id].parent_id
            change = {"sessionId": session_id, "after": after, "messages": branch(tree, below)}
            return head != session.head_id, change, session.project_id

        changed, change, project_id = await self._db.atomic(apply)
        if changed:
            self._messages.path_changed(session_id, project_id, change["after"], change["messages"])
        return change

    async def fork(
        self, session_id: str, message_id: str, user_id: str | None, title: str | None = None
    ) -> dict[str, Any]:
        """A new session in the same project holding the path up to `message_id`: copies of
        its messages and parts, and the todo list as it was at that message."""

        def apply() -> dict[str, Any]:
            source = Session.get_or_none(Session.id == session_id)
            if source is None:
                raise NotFound("Session not found")
            tree = Tree(Message.select().where(Message.session == session_id))
            if message_id not in tree.rows:
                raise NotFound("Message not found")
            rows = [tree.rows[i] for i in tree.path(message_id)]
            if any(row.status == "streaming" for row in rows):
                raise Conflict("That answer is still streaming")
            fork = Session.create(
                id=new_id("sess"),
                project=source.project_id,
                created_by=user_id,
                title=source.title if title is None else title,
                agent=source.agent,
                model=source.model,
                forked_from=source.id,
                forked_at=message_id,
            )
            head = _copy(rows, fork.id)
            last = rows[-1]
            then = last.updated_at if last.role == "assistant" else last.created_at
            store_todos(fork.id, todos_as_of(session_id, then))
            move_head(fork.id, head)
            return session_to_dict(Session.get_by_id(fork.id))

        data = await self._db.atomic(apply)
        self._sessions.publish("session.created", data)
        return data


def _copy(rows: list[Message], session_id: str) -> str:
    """Copy messages (a path, oldest first) and their parts into a session; return the id of
    the last copy. Copies keep their usage for display; totals count runs, not copies."""
    ids = {row.id: new_id("msg") for row in rows}
    messages = [
        {
            "id": ids[row.id],
            "session": session_id,
            "parent_id": ids.get(row.parent_id or ""),
            **{column: row.__data__[column] for column in COPIED_COLUMNS},
        }
        for row in rows
    ]
    for start in range(0, len(messages), BATCH):
        Message.insert_many(messages[start : start + BATCH]).execute()
    parts = [
        {
            "id": new_id("part"),
            "message": ids[part.message_id],
            "session": session_id,
            "type": part.type,
            "position": part.position,
            "status": part.status,
            "content": part.content,
            "created_at": part.created_at,
            "updated_at": part.updated_at,
        }
        for part in Part.select()
        .where(Part.message.in_(list(ids)))
        .order_by(Part.message, Part.position)
    ]
    for start in range(0, len(parts), BATCH):
        Part.insert_many(parts[start : start + BATCH]).execute()
    return ids[rows[-1].id]
