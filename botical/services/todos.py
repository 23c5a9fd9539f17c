"""Per-session todo lists. The list is always replaced whole, in one transaction; at most one
item is `in_progress`; every change publishes `todo.updated` with the full list."""

from __future__ import annotations

import builtins
from typing import Any

from botical.bus import Event, EventBus
from botical.db import Database, now_ms
from botical.db.models import Session, Todo, TodoSnapshot
from botical.errors import NotFound, ValidationError
from botical.ids import new_id

STATUSES = ("pending", "in_progress", "completed")
MAX_ITEMS = 100


def todo_to_dict(todo: Todo) -> dict[str, Any]:
    return {
        "id": todo.id,
        "content": todo.content,
        "activeForm": todo.active_form,
        "status": todo.status,
        "position": todo.position,
    }


def check_todos(todos: list[dict[str, Any]]) -> None:
    """VALIDATION_ERROR unless the list is short enough and has at most one item in progress."""
    if len(todos) > MAX_ITEMS:
        raise ValidationError(details={"todos": [f"At most {MAX_ITEMS} items."]})
    if sum(1 for t in todos if t["status"] == "in_progress") > 1:
        raise ValidationError(details={"todos": ["At most one item may be in_progress."]})


def store_todos(session_id: str, todos: list[dict[str, Any]]) -> list[Todo]:
    """Replace a session's list and keep a snapshot of it (inside the caller's transaction)."""
    Todo.delete().where(Todo.session == session_id).execute()
    now = now_ms()
    rows = [
        Todo(
            id=new_id("todo"),
            session=session_id,
            content=t["content"],
            active_form=t.get("activeForm", ""),
            status=t["status"],
            position=i,
            created_at=now,
            updated_at=now,
        )
        for i, t in enumerate(todos)
    ]
    if rows:
        Todo.bulk_create(rows)
    snapshot = [
        {"content": t.content, "activeForm": t.active_form, "status": t.status} for t in rows
    ]
    TodoSnapshot.create(id=new_id("todo"), session=session_id, todos=snapshot, created_at=now)
    return rows


def todos_as_of(session_id: str, at: int) -> list[dict[str, Any]]:
    """The session's todo list as it was set at time `at` (ms): its last snapshot by then."""
    snapshot = (
        TodoSnapshot.select()
        .where(TodoSnapshot.session == session_id, TodoSnapshot.created_at <= at)
        .order_by(TodoSnapshot.created_at.desc(), TodoSnapshot.id.desc())
        .first()
    )
    return snapshot.todos if snapshot else []


class TodoService:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db = db
        self._bus = bus

    async def list(self, session_id: str) -> list[dict[str, Any]]:
        """The session's todo list, in order."""

        def select() -> list[Todo]:
            return list(Todo.select().where(Todo.session == session_id).order_by(Todo.position))

        return [todo_to_dict(t) for t in await self._db.run(select)]

    async def replace(
        self, session_id: str, todos: builtins.list[dict[str, Any]]
    ) -> builtins.list[dict[str, Any]]:
        """Replace the whole list atomically and announce it."""
        check_todos(todos)

        def apply() -> tuple[str, builtins.list[Todo]]:
            session = Session.get_or_none(Session.id == session_id)
            if session is None:
                raise NotFound("Session not found")
            return session.project_id, store_todos(session_id, todos)

        project_id, rows = await self._db.atomic(apply)
        items = [todo_to_dict(t) for t in rows]
        self._bus.publish(
            Event(
                "todo.updated",
                {"sessionId": session_id, "todos": items},
                project_id=project_id,
                session_id=session_id,
            )
        )
        return items
