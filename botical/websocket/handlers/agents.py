"""agents.*: list and get agent configurations."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ
from botical.hookspecs import hookimpl
from botical.websocket.handlers import MethodContext, method, register_module
from botical.websocket.handlers import results as r

_project = fields.String(required=True, validate=validate.Length(max=40))


class ListParams(Schema):
    projectId = _project


class GetParams(Schema):
    projectId = _project
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))


@method("agents.list", ListParams, r.AgentList, role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the built-in and custom agents of a project."""
    return {"items": await ctx.app.agents.list(ctx.project_id)}


@method("agents.get", GetParams, r.AgentResult, role=READ)
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get one agent's configuration."""
    return (await ctx.app.agents.get(ctx.project_id, p["name"])).to_dict()


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
