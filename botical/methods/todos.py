"""todos.*: read and replace a session's todo list."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.methods import MethodContext, method, rest
from botical.methods import results as r
from botical.methods.sessions import SESSION
from botical.services.todos import MAX_ITEMS
from botical.tools.todos import TodoItem


class GetParams(Schema):
    sessionId = SESSION


class UpdateParams(Schema):
    sessionId = SESSION
    todos = fields.List(
        fields.Nested(TodoItem), required=True, validate=validate.Length(max=MAX_ITEMS)
    )


TodoList = r.page_of(r.TodoResult)


@rest("GET /api/sessions/{sessionId}/todos")
@method("todos.get", GetParams, TodoList, role=READ, scope="session")
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get a session's todo list."""
    return {"items": await ctx.app.todos.list(p["sessionId"]), "nextCursor": None}


@rest("PUT /api/sessions/{sessionId}/todos")
@method("todos.update", UpdateParams, TodoList, role=WRITE, scope="session")
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Replace a session's todo list (at most one item in_progress)."""
    return {"items": await ctx.app.todos.replace(p["sessionId"], p["todos"]), "nextCursor": None}


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
