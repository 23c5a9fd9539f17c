"""todoread and todowrite: the agent keeps the same todo list clients see."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, fields, validate

from botical.services.todos import MAX_ITEMS, STATUSES
from botical.tools.base import Tool, ToolContext, ToolResult


class TodoItem(Schema):
    content = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    activeForm = fields.String(load_default="", validate=validate.Length(max=2000))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class TodoWriteArgs(Schema):
    todos = fields.List(
        fields.Nested(TodoItem), required=True, validate=validate.Length(max=MAX_ITEMS)
    )


class TodoReadArgs(Schema):
    pass


async def todowrite(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Replace the session's todo list."""
    items = await ctx.services.todos.replace(ctx.session_id, args["todos"])
    done = sum(1 for t in items if t["status"] == "completed")
    return ToolResult(f"Todo list saved: {len(items)} items, {done} completed")


async def todoread(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Return the session's todo list as JSON."""
    items = await ctx.services.todos.list(ctx.session_id)
    return ToolResult(json.dumps(items, ensure_ascii=False))


TOOLS = (
    Tool(
        "todowrite",
        "Replace this session's todo list (at most one item in_progress).",
        todowrite,
        TodoWriteArgs,
        allowed_by_default=True,
    ),
    Tool("todoread", "Read this session's todo list.", todoread, TodoReadArgs, read_only=True),
)
