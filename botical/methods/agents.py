"""agents.*: list, get, create and delete agent configurations."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import MANAGE, READ
from botical.hookspecs import hookimpl
from botical.methods import MethodContext, method, rest
from botical.methods import results as r
from botical.methods.sessions import PROJECT
from botical.schema import Int

NAME = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ListParams(Schema):
    projectId = PROJECT


class GetParams(Schema):
    projectId = PROJECT
    name = NAME


class RuleParams(Schema):
    tool = fields.String(required=True, validate=validate.Length(min=1, max=64))
    action = fields.String(required=True, validate=validate.OneOf(["allow", "ask", "deny"]))
    pattern = fields.String(load_default="*", validate=validate.Length(min=1, max=1000))


class CreateParams(Schema):
    projectId = PROJECT
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,63}$"))
    description = fields.String(validate=validate.Length(max=2000))
    prompt = fields.String(validate=validate.Length(max=100_000))
    model = fields.String(validate=validate.Length(min=1, max=200))
    tools = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=200),
        allow_none=True,
    )
    maxSteps = Int(validate=validate.Range(min=1, max=200))
    rules = fields.List(fields.Nested(RuleParams), validate=validate.Length(max=200))


@rest("GET /api/projects/{projectId}/agents")
@method("agents.list", ListParams, r.page_of(r.AgentResult), role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the built-in and custom agents of a project."""
    return {"items": await ctx.app.agents.list(ctx.project_id), "nextCursor": None}


@rest("GET /api/projects/{projectId}/agents/{name}")
@method("agents.get", GetParams, r.AgentResult, role=READ)
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get one agent's configuration."""
    return (await ctx.app.agents.get(ctx.project_id, p["name"])).to_dict()


@rest("POST /api/projects/{projectId}/agents", 201)
@method("agents.create", CreateParams, r.AgentResult, role=MANAGE)
async def create(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Define a custom agent in a project."""
    config = {k: v for k, v in p.items() if k != "projectId"}
    if config.get("model"):
        await ctx.app.catalog.check(ctx.project_id, {"model": config["model"]})
    return await ctx.app.agents.create(ctx.project_id, config)


@rest("DELETE /api/projects/{projectId}/agents/{name}", 204)
@method("agents.delete", GetParams, r.Nothing, role=MANAGE)
async def delete(ctx: MethodContext, p: dict[str, Any]) -> None:
    """Delete a custom agent."""
    await ctx.app.agents.delete(ctx.project_id, p["name"])


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
