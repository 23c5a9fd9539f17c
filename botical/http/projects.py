"""`/api/projects`, `/api/projects/{id}`, members, and `/api/me`."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from botical.auth.permissions import MANAGE, OWN, READ, ROLE_NAMES, Role
from botical.http.base import ApiHandler
from botical.ids import check_id
from botical.services.pagination import MAX_LIMIT

_name = fields.String(validate=validate.Length(min=1, max=200))
_description = fields.String(validate=validate.Length(max=10_000))
_path = fields.String(validate=validate.Length(min=1, max=4096), allow_none=True)
_role = fields.String(validate=validate.OneOf(ROLE_NAMES))


class PageArgs(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=200))


class ProjectCreate(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = _description
    path = _path


class ProjectUpdate(Schema):
    name = _name
    description = _description
    path = _path


class MemberAdd(Schema):
    userId = fields.String(validate=validate.Length(max=40))
    userName = fields.String(validate=validate.Length(min=1, max=64))
    role = fields.String(required=True, validate=validate.OneOf(ROLE_NAMES))

    @validates_schema
    def one_user(self, data: dict, **_: object) -> None:
        if ("userId" in data) == ("userName" in data):
            raise ValidationError("Give exactly one of userId and userName.", "_schema")


class MemberUpdate(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLE_NAMES))


class MeHandler(ApiHandler):
    def get(self) -> None:
        self.write_json(self.identity.to_dict())


class ProjectsHandler(ApiHandler):
    async def get(self) -> None:
        args = self.load_query(PageArgs())
        self.write_json(await self.botical.projects.list_for(self.identity, **args))

    async def post(self) -> None:
        body = self.load_body(ProjectCreate())
        self.write_json(await self.botical.projects.create(self.identity, **body), status=201)


class ProjectHandler(ApiHandler):
    async def get(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        role = await self.require(project_id, READ)
        self.write_json(await self.botical.projects.get(project_id, role))

    async def patch(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        body = self.load_body(ProjectUpdate())
        await self.require(project_id, MANAGE)
        self.write_json(await self.botical.projects.update(self.identity, project_id, body))

    async def delete(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, OWN)
        await self.botical.projects.delete(self.identity, project_id)
        self.set_status(204)
        self.finish()


class MembersHandler(ApiHandler):
    async def get(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, READ)
        self.write_json(await self.botical.projects.members(project_id))

    async def post(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        body = self.load_body(MemberAdd())
        actor = await self.require(project_id, MANAGE)
        role = Role.parse(body.pop("role"))
        member = await self.botical.projects.add_member(actor, project_id, body, role)
        self.write_json(member, status=201)


class MemberHandler(ApiHandler):
    async def patch(self, project_id: str, user_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        check_id(user_id, "usr", "userId")
        body = self.load_body(MemberUpdate())
        actor = await self.require(project_id, MANAGE)
        member = await self.botical.projects.set_role(
            actor, project_id, user_id, Role.parse(body["role"])
        )
        self.write_json(member)

    async def delete(self, project_id: str, user_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        check_id(user_id, "usr", "userId")
        actor = await self.require(project_id, READ)
        await self.botical.projects.remove_member(self.identity, actor, project_id, user_id)
        self.set_status(204)
        self.finish()
