"""The task tool: run a sub-agent in a child session and return its answer."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult


class TaskArgs(Schema):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    agent = fields.String(load_default="explore", validate=validate.Length(min=1, max=64))
    description = fields.String(load_default="", validate=validate.Length(max=200))


async def task(ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
    """Start a child session with the given agent, send it the prompt, wait for its answer."""
    runner = ctx.services.runner
    child = await ctx.services.sessions.create(
        ctx.project_id,
        ctx.identity.user_id,
        title=args["description"] or "Sub-task",
        agent=args["agent"],
        parent_id=ctx.session_id,
    )
    message = await runner.run_to_end(ctx.identity, ctx.project_id, child["id"], args["prompt"])
    text = "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")
    if message["status"] != "completed":
        raise ToolFailure(f"Sub-agent ended with status {message['status']}: {text}")
    return ToolResult(text, metadata={"sessionId": child["id"]})


TOOLS = (
    Tool(
        "task",
        "Delegate a sub-task to another agent in a child session.",
        task,
        TaskArgs,
        subject="agent",
    ),
)
