"""projects.* and members.*: projects the caller belongs to, and their members; and the
`project` scope."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from botical.auth.permissions import MANAGE, OWN, READ, ROLE_NAMES, Role
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.methods import MethodContext, Scope, method, rest
from botical.methods import results as r
from botical.methods.sessions import CURSOR, LIMIT, PROJECT
from botical.schema import Int

if TYPE_CHECKING:
    from botical.app import Botical

NAME = fields.String(validate=validate.Length(min=1, max=200))
DESCRIPTION = fields.String(validate=validate.Length(max=10_000))
PATH = fields.String(validate=validate.Length(min=1, max=4096), allow_none=True)
ROLE = fields.String(required=True, validate=validate.OneOf(ROLE_NAMES))
USER = fields.String(required=True, validate=validate.Length(max=40))


class ListParams(Schema):
    limit = LIMIT
    cursor = CURSOR


class CreateParams(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = DESCRIPTION
    path = PATH


class ProjectParams(Schema):
    projectId = PROJECT


class UpdateParams(Schema):
    projectId = PROJECT
    name = NAME
    description = DESCRIPTION
    path = PATH


class UsageParams(Schema):
    projectId = PROJECT
    since = Int(validate=validate.Range(min=0), metadata={"description": "UTC ms, inclusive"})
    until = Int(validate=validate.Range(min=0), metadata={"description": "UTC ms, exclusive"})


class MemberAddParams(Schema):
    projectId = PROJECT
    userId = fields.String(validate=validate.Length(max=40))
    userName = fields.String(validate=validate.Length(min=1, max=64))
    role = ROLE

    @validates_schema
    def one_user(self, data: dict, **_: object) -> None:
        if ("userId" in data) == ("userName" in data):
            raise ValidationError("Give exactly one of userId and userName.", "_schema")


class MemberParams(Schema):
    projectId = PROJECT
    userId = USER


class MemberUpdateParams(MemberParams):
    role = ROLE


@rest("GET /api/projects")
@method("projects.list", ListParams, r.page_of(r.ProjectResult), role=None, scope=None)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the caller's projects, oldest first, each with the caller's role."""
    return await ctx.app.projects.list_for(ctx.identity, p.get("limit"), p.get("cursor"))


@rest("POST /api/projects", 201)
@method("projects.create", CreateParams, r.ProjectResult, role=None, scope=None)
async def create(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a project; the caller becomes its owner."""
    return await ctx.app.projects.create(ctx.identity, **p)


@rest("GET /api/projects/{projectId}")
@method("projects.get", ProjectParams, r.ProjectResult, role=READ)
async def get(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Get a project, with the caller's role in it."""
    return await ctx.app.projects.get(ctx.project_id, ctx.role)


@rest("PATCH /api/projects/{projectId}")
@method("projects.update", UpdateParams, r.ProjectResult, role=MANAGE)
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a project's name, description or directory."""
    changes = {k: v for k, v in p.items() if k != "projectId"}
    return await ctx.app.projects.update(ctx.identity, ctx.project_id, changes)


@rest("DELETE /api/projects/{projectId}", 204)
@method("projects.delete", ProjectParams, r.Nothing, role=OWN)
async def delete(ctx: MethodContext, p: dict[str, Any]) -> None:
    """Delete a project and everything in it."""
    await ctx.app.projects.delete(ctx.identity, ctx.project_id)


@rest("GET /api/projects/{projectId}/usage")
@method("projects.usage", UsageParams, r.ProjectUsage, role=READ)
async def usage(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Token usage and cost of a project's answers, in total and by model."""
    return await ctx.app.usage.project(ctx.project_id, p.get("since"), p.get("until"))


@rest("GET /api/projects/{projectId}/members")
@method("members.list", ProjectParams, r.page_of(r.MemberResult), role=READ)
async def members(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a project's members."""
    return await ctx.app.projects.members(ctx.project_id)


@rest("POST /api/projects/{projectId}/members", 201)
@method("members.add", MemberAddParams, r.MemberResult, role=MANAGE)
async def add_member(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add a user, by id or name, with a role (only an owner may add an owner)."""
    user: dict[str, str] = {k: p[k] for k in ("userId", "userName") if k in p}
    assert ctx.role is not None
    return await ctx.app.projects.add_member(ctx.role, ctx.project_id, user, Role.parse(p["role"]))


@rest("PATCH /api/projects/{projectId}/members/{userId}")
@method("members.update", MemberUpdateParams, r.MemberResult, role=MANAGE)
async def set_role(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a member's role; a project always keeps an owner."""
    assert ctx.role is not None
    user_id = check_id(p["userId"], "usr", "userId")
    return await ctx.app.projects.set_role(ctx.role, ctx.project_id, user_id, Role.parse(p["role"]))


@rest("DELETE /api/projects/{projectId}/members/{userId}", 204)
@method("members.remove", MemberParams, r.Nothing, role=READ)
async def remove_member(ctx: MethodContext, p: dict[str, Any]) -> None:
    """Remove a member (admins remove others; anyone may leave)."""
    assert ctx.role is not None
    user_id = check_id(p["userId"], "usr", "userId")
    await ctx.app.projects.remove_member(ctx.identity, ctx.role, ctx.project_id, user_id)


async def _project(app: Botical, project_id: str, cached_only: bool) -> str:
    return project_id  # whether it exists is the role lookup's answer: members only


PROJECT_SCOPE = Scope("project", "projectId", "prj", _project, "Project not found")


@hookimpl
def botical_register_scopes(register) -> None:
    register(PROJECT_SCOPE)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
