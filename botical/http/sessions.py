"""Sessions, messages, runs, agents and approvals over REST."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from botical.auth.permissions import MANAGE, READ, WRITE
from botical.errors import NotFound
from botical.http.base import ApiHandler
from botical.http.projects import PageArgs
from botical.ids import check_id
from botical.services.agents import AgentConfig
from botical.services.todos import MAX_ITEMS as MAX_TODOS
from botical.tools.todos import TodoItem

_title = fields.String(validate=validate.Length(max=500))
_agent = fields.String(validate=validate.Length(min=1, max=64))
_model = fields.String(validate=validate.Length(min=1, max=200), allow_none=True)
MAX_CONTENT = 200_000


class SessionCreate(Schema):
    title = _title
    agent = _agent
    model = _model
    parentId = fields.String(validate=validate.Length(max=40))


class SessionUpdate(Schema):
    title = _title
    agent = _agent
    model = _model


class SessionListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(["active", "archived"]))


class SessionGetArgs(Schema):
    includeMessages = fields.Boolean()


class MessageListArgs(PageArgs):
    after = fields.String(validate=validate.Length(max=40))


class MessageSend(Schema):
    content = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CONTENT))
    agent = _agent
    model = fields.String(validate=validate.Length(min=1, max=200))
    idempotencyKey = fields.String(validate=validate.Length(min=1, max=128))


class RetryBody(Schema):
    messageId = fields.String(validate=validate.Length(max=40))


class RuleSchema(Schema):
    tool = fields.String(required=True, validate=validate.Length(min=1, max=64))
    action = fields.String(required=True, validate=validate.OneOf(["allow", "ask", "deny"]))
    pattern = fields.String(load_default="*", validate=validate.Length(min=1, max=1000))


class AgentCreate(Schema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,63}$"))
    description = fields.String(validate=validate.Length(max=2000))
    prompt = fields.String(validate=validate.Length(max=100_000))
    model = fields.String(validate=validate.Length(min=1, max=200))
    tools = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=200),
        allow_none=True,
    )
    maxSteps = fields.Integer(validate=validate.Range(min=1, max=200))
    rules = fields.List(fields.Nested(RuleSchema), validate=validate.Length(max=200))


class ApproveBody(Schema):
    scope = fields.String(load_default="once", validate=validate.OneOf(["once", "session"]))


class RejectBody(Schema):
    reason = fields.String(validate=validate.Length(max=2000))


class TodosBody(Schema):
    todos = fields.List(
        fields.Nested(TodoItem), required=True, validate=validate.Length(max=MAX_TODOS)
    )


class SessionHandlerBase(ApiHandler):
    async def session_project(self, session_id: str, role) -> str:
        """Authorize the caller on the session's project; return the project id."""
        check_id(session_id, "sess", "sessionId")
        return await self.botical.permissions.require_session(self.identity, session_id, role)


class ProjectSessionsHandler(ApiHandler):
    async def get(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        args = self.load_query(SessionListArgs())
        await self.require(project_id, READ)
        self.write_json(await self.botical.sessions.list(project_id, **args))

    async def post(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        body = self.load_body(SessionCreate())
        await self.require(project_id, WRITE)
        if "parentId" in body:
            check_id(body["parentId"], "sess", "parentId")
        session = await self.botical.sessions.create(
            project_id,
            self.identity.user_id,
            title=body.get("title", ""),
            agent=body.get("agent", "default"),
            model=body.get("model"),
            parent_id=body.get("parentId"),
        )
        self.write_json(session, status=201)


class SessionHandler(SessionHandlerBase):
    async def get(self, session_id: str) -> None:
        args = self.load_query(SessionGetArgs())
        await self.session_project(session_id, READ)
        session = await self.botical.sessions.get(session_id, args.get("includeMessages", False))
        session["run"] = self.botical.runner.status(session_id)
        self.write_json(session)

    async def patch(self, session_id: str) -> None:
        body = self.load_body(SessionUpdate())
        await self.session_project(session_id, WRITE)
        self.write_json(await self.botical.sessions.update(session_id, body))


class ArchiveHandler(SessionHandlerBase):
    async def post(self, session_id: str) -> None:
        await self.session_project(session_id, WRITE)
        await self.botical.runner.cancel(session_id)
        self.write_json(await self.botical.sessions.archive(session_id))


class MessagesHandler(SessionHandlerBase):
    async def get(self, session_id: str) -> None:
        args = self.load_query(MessageListArgs())
        await self.session_project(session_id, READ)
        if "after" in args:
            check_id(args["after"], "msg", "after")
        self.write_json(await self.botical.messages.list(session_id, **args))

    async def post(self, session_id: str) -> None:
        body = self.load_body(MessageSend())
        project_id = await self.session_project(session_id, WRITE)
        result = await self.botical.runner.send(
            self.identity,
            project_id,
            session_id,
            body["content"],
            agent=body.get("agent"),
            model=body.get("model"),
            idempotency_key=body.get("idempotencyKey"),
        )
        self.write_json(result, status=202)


class CancelHandler(SessionHandlerBase):
    async def post(self, session_id: str) -> None:
        await self.session_project(session_id, WRITE)
        self.write_json(await self.botical.runner.cancel(session_id))


class RetryHandler(SessionHandlerBase):
    async def post(self, session_id: str) -> None:
        body = self.load_body(RetryBody())
        project_id = await self.session_project(session_id, WRITE)
        if "messageId" in body:
            check_id(body["messageId"], "msg", "messageId")
        result = await self.botical.runner.retry(
            self.identity, project_id, session_id, body.get("messageId")
        )
        self.write_json(result, status=202)


class AgentsHandler(ApiHandler):
    async def get(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, READ)
        self.write_json({"items": await self.botical.agents.list(project_id), "nextCursor": None})

    async def post(self, project_id: str) -> None:
        check_id(project_id, "prj", "projectId")
        body = self.load_body(AgentCreate())
        await self.require(project_id, MANAGE)
        if body.get("model"):
            await self.botical.runner.check_names(project_id, {"model": body["model"]})
        self.write_json(await self.botical.agents.create(project_id, body), status=201)


class AgentHandler(ApiHandler):
    async def get(self, project_id: str, name: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, READ)
        agent: AgentConfig = await self.botical.agents.get(project_id, name)
        self.write_json(agent.to_dict())

    async def delete(self, project_id: str, name: str) -> None:
        check_id(project_id, "prj", "projectId")
        await self.require(project_id, MANAGE)
        await self.botical.agents.delete(project_id, name)
        self.set_status(204)
        self.finish()


class SessionApprovalsHandler(SessionHandlerBase):
    async def get(self, session_id: str) -> None:
        await self.session_project(session_id, READ)
        items = await self.botical.approvals.pending(session_id)
        self.write_json({"items": items, "nextCursor": None})


class ApprovalHandler(ApiHandler):
    async def post(self, approval_id: str, action: str) -> None:
        check_id(approval_id, "appr", "approvalId")
        approvals = self.botical.approvals
        approval = await approvals.get(approval_id)
        try:
            project_id = await self.botical.permissions.require_session(
                self.identity, approval["sessionId"], WRITE
            )
        except NotFound:  # the same answer as for an id that does not exist
            raise NotFound("Approval not found") from None
        if action == "approve":
            body = self.load_body(ApproveBody())
            result = await approvals.approve(
                approval_id, self.identity.user_id, project_id, body["scope"]
            )
        else:
            body = self.load_body(RejectBody())
            result = await approvals.reject(
                approval_id, self.identity.user_id, project_id, body.get("reason")
            )
        self.write_json(result)


class TodosHandler(SessionHandlerBase):
    async def get(self, session_id: str) -> None:
        await self.session_project(session_id, READ)
        self.write_json({"items": await self.botical.todos.list(session_id), "nextCursor": None})

    async def put(self, session_id: str) -> None:
        body = self.load_body(TodosBody())
        await self.session_project(session_id, WRITE)
        items = await self.botical.todos.replace(session_id, body["todos"])
        self.write_json({"items": items, "nextCursor": None})
