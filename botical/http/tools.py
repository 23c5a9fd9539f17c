"""Tools over REST: every tool a project's agents can use, and custom tools defined by admins."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from botical.auth.permissions import MANAGE, READ, Role
from botical.errors import NotFound
from botical.http.base import ApiHandler
from botical.ids import check_id


class ToolListArgs(Schema):
    includeDisabled = fields.Boolean(load_default=False)


class ProjectToolsHandler(ApiHandler):
    async def get(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        args = self.load_query(ToolListArgs())
        await self.require(project_id, READ)
        tools = await self.botical.tools_for(project_id, args["includeDisabled"])
        self.write_json({"items": [t.to_dict() for t in tools.values()], "nextCursor": None})

    async def post(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, MANAGE)
        tool = await self.botical.custom_tools.create(project_id, self.identity, self.json_body())
        self.write_json(tool, status=201)


class ToolHandler(ApiHandler):
    async def tool(self, tool_id: str, role: Role) -> dict[str, Any]:
        """The custom tool, if the caller has `role` in its project; the same NOT_FOUND for a
        tool that does not exist and one in a project the caller cannot see."""
        check_id(tool_id, "tool", "toolId")
        tool = await self.botical.custom_tools.get(tool_id)
        try:
            await self.require(tool["projectId"], role)
        except NotFound:
            raise NotFound("Tool not found") from None
        return tool

    async def get(self, tool_id: str) -> None:
        self.write_json(await self.tool(tool_id, READ))

    async def patch(self, tool_id: str) -> None:
        await self.tool(tool_id, MANAGE)
        changes = self.json_body()
        self.write_json(await self.botical.custom_tools.update(tool_id, self.identity, changes))

    async def delete(self, tool_id: str) -> None:
        await self.tool(tool_id, MANAGE)
        await self.botical.custom_tools.delete(tool_id)
        self.set_status(204)
        self.finish()
