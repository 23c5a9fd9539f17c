"""tools.*: list the tools of a project, define custom tools, answer and list approvals; and
the `approval` and `tool` scopes."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import MANAGE, READ, WRITE, NotKept
from botical.hookspecs import hookimpl
from botical.methods import MethodContext, Scope, method, rest
from botical.methods import results as r
from botical.methods.sessions import PROJECT, SESSION
from botical.schema import Bool, optional_fields
from botical.services.custom_tools import ToolFields

if TYPE_CHECKING:
    from botical.app import Botical

APPROVAL = fields.String(required=True, validate=validate.Length(max=40))
TOOL = fields.String(required=True, validate=validate.Length(max=40))


class ListParams(Schema):
    projectId = PROJECT
    includeDisabled = Bool(load_default=False)


class ApproveParams(Schema):
    approvalId = APPROVAL
    scope = fields.String(load_default="once", validate=validate.OneOf(["once", "session"]))


class RejectParams(Schema):
    approvalId = APPROVAL
    reason = fields.String(validate=validate.Length(max=2000))


class PendingParams(Schema):
    sessionId = SESSION


class CreateParams(ToolFields):
    projectId = PROJECT


class ToolParams(Schema):
    toolId = TOOL


UpdateParams = Schema.from_dict(
    {**optional_fields(ToolFields), "toolId": TOOL}, name="UpdateToolParams"
)


@rest("GET /api/projects/{projectId}/tools")
@method("tools.list", ListParams, r.page_of(r.ToolResult), role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the tools agents of this project can use, with their JSON Schemas."""
    tools = await ctx.app.toolbox.for_project(ctx.project_id, p["includeDisabled"])
    return {"items": [t.to_dict() for t in tools.values()], "nextCursor": None}


@rest("POST /api/projects/{projectId}/tools", 201)
@method("tools.create", CreateParams, r.CustomToolResult, role=MANAGE)
async def create(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Define a custom tool (a command tool needs the right to execute code)."""
    tool = {k: v for k, v in p.items() if k != "projectId"}
    return await ctx.app.custom_tools.create(ctx.project_id, ctx.identity, tool)


@rest("GET /api/tools/{toolId}")
@method("tools.get", ToolParams, r.CustomToolResult, role=READ, scope="tool")
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get a custom tool."""
    return await ctx.app.custom_tools.get(p["toolId"])


@rest("PATCH /api/tools/{toolId}")
@method("tools.update", UpdateParams, r.CustomToolResult, role=MANAGE, scope="tool")
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a custom tool; it is checked again as a whole."""
    changes = {k: v for k, v in p.items() if k != "toolId"}
    return await ctx.app.custom_tools.update(p["toolId"], ctx.identity, changes)


@rest("DELETE /api/tools/{toolId}", 204)
@method("tools.delete", ToolParams, r.Nothing, role=MANAGE, scope="tool")
async def delete(ctx: MethodContext, p: dict[str, Any]) -> None:
    """Delete a custom tool."""
    await ctx.app.custom_tools.delete(p["toolId"])


@rest("POST /api/approvals/{approvalId}/approve")
@method("tools.approve", ApproveParams, r.ApprovalResult, role=WRITE, scope="approval")
async def approve(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Approve a pending tool call, once or for the rest of the session."""
    return await ctx.app.approvals.approve(
        p["approvalId"], ctx.identity.user_id, ctx.project_id, p["scope"]
    )


@rest("POST /api/approvals/{approvalId}/reject")
@method("tools.reject", RejectParams, r.ApprovalResult, role=WRITE, scope="approval")
async def reject(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Reject a pending tool call; the reason is shown to the model."""
    return await ctx.app.approvals.reject(
        p["approvalId"], ctx.identity.user_id, ctx.project_id, p.get("reason")
    )


@rest("GET /api/sessions/{sessionId}/approvals")
@method("tools.pending", PendingParams, r.page_of(r.ApprovalResult), role=READ, scope="session")
async def pending(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a session's pending approvals."""
    return {"items": await ctx.app.approvals.pending(p["sessionId"]), "nextCursor": None}


async def _approval_project(app: Botical, approval_id: str, cached_only: bool) -> str:
    if cached_only:  # approvals and tools are not kept in memory
        raise NotKept
    approval = await app.approvals.get(approval_id)
    return await app.permissions.session_project(approval["sessionId"])


async def _tool_project(app: Botical, tool_id: str, cached_only: bool) -> str:
    if cached_only:  # approvals and tools are not kept in memory
        raise NotKept
    return (await app.custom_tools.get(tool_id))["projectId"]


SCOPES = (
    Scope("approval", "approvalId", "appr", _approval_project, "Approval not found"),
    Scope("tool", "toolId", "tool", _tool_project, "Tool not found"),
)


@hookimpl
def botical_register_scopes(register) -> None:
    for scope in SCOPES:
        register(scope)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
