"""tools.*: list tools, answer and list approvals."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.websocket.handlers import MethodContext, method, register_module
from botical.websocket.handlers import results as r

_approval = fields.String(required=True, validate=validate.Length(max=40))


class ListParams(Schema):
    projectId = fields.String(required=True, validate=validate.Length(max=40))


class ApproveParams(Schema):
    approvalId = _approval
    scope = fields.String(load_default="once", validate=validate.OneOf(["once", "session"]))


class RejectParams(Schema):
    approvalId = _approval
    reason = fields.String(validate=validate.Length(max=2000))


class PendingParams(Schema):
    sessionId = fields.String(required=True, validate=validate.Length(max=40))


@method("tools.list", ListParams, r.ToolList, role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the tools agents of this project can use, with their JSON Schemas."""
    tools = await ctx.app.tools_for(ctx.project_id)
    return {"items": [t.to_dict() for t in tools.values()]}


@method("tools.approve", ApproveParams, r.ApprovalResult, role=WRITE, scope="approval")
async def approve(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Approve a pending tool call, once or for the rest of the session."""
    return await ctx.app.approvals.approve(
        p["approvalId"], ctx.identity.user_id, ctx.project_id, p["scope"]
    )


@method("tools.reject", RejectParams, r.ApprovalResult, role=WRITE, scope="approval")
async def reject(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Reject a pending tool call; the reason is shown to the model."""
    return await ctx.app.approvals.reject(
        p["approvalId"], ctx.identity.user_id, ctx.project_id, p.get("reason")
    )


@method("tools.pending", PendingParams, r.ApprovalList, role=READ, scope="session")
async def pending(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a session's pending approvals."""
    return {"items": await ctx.app.approvals.pending(p["sessionId"])}


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
