"""Result schemas: they document results in `system.describe` (never run on the hot path)."""

from __future__ import annotations

from marshmallow import Schema, fields


class Usage(Schema):
    inputTokens = fields.Integer()
    outputTokens = fields.Integer()
    cost = fields.Float()


class PartResult(Schema):
    id = fields.String()
    messageId = fields.String()
    sessionId = fields.String()
    type = fields.String()
    position = fields.Integer()
    status = fields.String(allow_none=True)
    text = fields.String()
    createdAt = fields.Integer()
    updatedAt = fields.Integer()


class MessageResult(Schema):
    id = fields.String()
    sessionId = fields.String()
    role = fields.String()
    parentId = fields.String(allow_none=True)
    runId = fields.String(allow_none=True)
    status = fields.String()
    finishReason = fields.String(allow_none=True)
    error = fields.Dict(allow_none=True)
    usage = fields.Nested(Usage)
    parts = fields.List(fields.Nested(PartResult))
    createdAt = fields.Integer()
    updatedAt = fields.Integer()


class SessionResult(Schema):
    id = fields.String()
    projectId = fields.String()
    parentId = fields.String(allow_none=True)
    title = fields.String()
    agent = fields.String()
    model = fields.String(allow_none=True)
    status = fields.String()
    usage = fields.Nested(Usage)
    messages = fields.List(fields.Nested(MessageResult))
    createdAt = fields.Integer()
    updatedAt = fields.Integer()


class SessionPage(Schema):
    items = fields.List(fields.Nested(SessionResult))
    nextCursor = fields.String(allow_none=True)


class MessagePage(Schema):
    items = fields.List(fields.Nested(MessageResult))
    nextCursor = fields.String(allow_none=True)


class ApprovalResult(Schema):
    id = fields.String()
    sessionId = fields.String()
    tool = fields.String()
    arguments = fields.Dict()
    status = fields.String()
    scope = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    expiresAt = fields.Integer()


class ApprovalList(Schema):
    items = fields.List(fields.Nested(ApprovalResult))


class SendResult(Schema):
    message = fields.Nested(MessageResult)
    runId = fields.String()


class CancelResult(Schema):
    cancelled = fields.Boolean()
    runId = fields.String(allow_none=True)


class RunResult(Schema):
    runId = fields.String()


class SyncResult(Schema):
    session = fields.Nested(SessionResult)
    messages = fields.List(fields.Nested(MessageResult))
    todos = fields.List(fields.Dict())
    pendingApprovals = fields.List(fields.Nested(ApprovalResult))
    status = fields.Dict()
    seq = fields.Integer()


class AgentResult(Schema):
    name = fields.String()
    description = fields.String()
    prompt = fields.String()
    model = fields.String(allow_none=True)
    tools = fields.List(fields.String(), allow_none=True)
    maxSteps = fields.Integer()
    rules = fields.List(fields.Dict())
    builtin = fields.Boolean()


class AgentList(Schema):
    items = fields.List(fields.Nested(AgentResult))


class ToolResultSchema(Schema):
    name = fields.String()
    description = fields.String()
    parameters = fields.Dict()
    source = fields.String()
    readOnly = fields.Boolean()
    needsExec = fields.Boolean()
    id = fields.String(metadata={"description": "Custom tools only"})
    kind = fields.String(metadata={"description": "Custom tools only: command or http"})
    config = fields.Dict(metadata={"description": "Custom tools only; secrets as {secret:NAME}"})
    enabled = fields.Boolean(metadata={"description": "Custom tools only"})


class ToolList(Schema):
    items = fields.List(fields.Nested(ToolResultSchema))
