"""todos.*: read and replace a session's todo list."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.services.todos import MAX_ITEMS
from botical.tools.todos import TodoItem
from botical.websocket.handlers import MethodContext, method, register_module

_session = fields.String(required=True, validate=validate.Length(max=40))


class GetParams(Schema):
    sessionId = _session


class UpdateParams(Schema):
    sessionId = _session
    todos = fields.List(
        fields.Nested(TodoItem), required=True, validate=validate.Length(max=MAX_ITEMS)
    )


class TodoResult(Schema):
    id = fields.String()
    content = fields.String()
    activeForm = fields.String()
    status = fields.String()
    position = fields.Integer()


class TodoList(Schema):
    items = fields.List(fields.Nested(TodoResult))


@method("todos.get", GetParams, TodoList, role=READ, scope="session")
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get a session's todo list."""
    return {"items": await ctx.app.todos.list(p["sessionId"])}


@method("todos.update", UpdateParams, TodoList, role=WRITE, scope="session")
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Replace a session's todo list (at most one item in_progress)."""
    return {"items": await ctx.app.todos.replace(p["sessionId"], p["todos"])}


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
