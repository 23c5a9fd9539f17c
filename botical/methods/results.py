"""What the server sends: the result schemas of the built-in methods (the data schemas of the
built-in events are in `methods.events`). `system.describe` publishes them as JSON Schema, and
the test suite checks every real result and event against what it publishes (tests/
integration/test_contract.py), so a field added to a `*_to_dict` without its schema fails a
test.

Fields are required unless marked `optional`: a required field is always present (its value
may still be null where `allow_none`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


def _req(field: fields.Field) -> fields.Field:
    field.required = True
    return field


def string(**kw: Any) -> fields.Field:
    return _req(fields.String(**kw))


def integer(**kw: Any) -> fields.Field:
    return _req(fields.Integer(**kw))


def number(**kw: Any) -> fields.Field:
    return _req(fields.Float(**kw))


def boolean(**kw: Any) -> fields.Field:
    return _req(fields.Boolean(**kw))


def mapping(**kw: Any) -> fields.Field:
    return _req(fields.Dict(**kw))


def one(schema: type[Schema], **kw: Any) -> fields.Field:
    return _req(fields.Nested(schema, **kw))


def many(schema: type[Schema] | fields.Field, **kw: Any) -> fields.Field:
    inner = schema if isinstance(schema, fields.Field) else fields.Nested(schema)
    return _req(fields.List(inner, **kw))


def ms(**kw: Any) -> fields.Field:
    return integer(metadata={"description": "UTC milliseconds"}, **kw)


def maybe(field: fields.Field) -> fields.Field:
    """A required field whose value may be null."""
    field.allow_none = True
    return field


def optional(field: fields.Field, description: str = "") -> fields.Field:
    """A field that is not always present."""
    field.required = False
    if description:
        field.metadata = {**field.metadata, "description": description}
    return field


class Usage(Schema):
    inputTokens = integer(metadata={"description": "every prompt token, cached ones included"})
    outputTokens = integer()
    cachedTokens = integer(metadata={"description": "input tokens read from a prompt cache"})
    cost = number(metadata={"description": "by [pricing]; 0 for unpriced models"})


class StepUsage(Schema):
    inputTokens = integer()
    outputTokens = integer()
    cachedTokens = integer()


class Versions(Schema):
    index = integer(metadata={"description": "which version this is, from 1 (oldest)"})
    count = integer()
    ids = many(fields.String(), metadata={"description": "every version's id, oldest first"})


class PartResult(Schema):
    id = string()
    messageId = string()
    sessionId = string()
    type = string(
        metadata={"description": "text, reasoning, tool_call, tool_result, step_start, step_finish"}
    )
    position = integer()
    status = maybe(string())
    text = optional(string(), "text and reasoning parts (delta events leave it out)")
    toolCallId = optional(string(), "tool_call and tool_result parts")
    tool = optional(string(), "tool_call and tool_result parts")
    arguments = optional(mapping(), "tool_call parts")
    approvalId = optional(string(), "tool_call parts that asked for approval")
    output = optional(string(), "tool_result parts")
    isError = optional(boolean(), "tool_result parts")
    metadata = optional(mapping(), "tool_result parts")
    step = optional(integer(), "step_start and step_finish parts")
    finishReason = optional(string(), "step_finish parts")
    usage = optional(one(StepUsage), "step_finish parts")
    error = optional(mapping(), "step_finish parts of a step that failed")
    createdAt = ms()
    updatedAt = ms()


class MessageResult(Schema):
    id = string()
    sessionId = string()
    role = string(metadata={"description": "user or assistant"})
    parentId = maybe(string())
    createdBy = maybe(string(metadata={"description": "the user who sent it (user messages)"}))
    agent = maybe(string())
    model = maybe(string())
    runId = maybe(string())
    status = string(
        metadata={
            "description": "user: completed or queued; assistant: streaming, completed, "
            "cancelled, error or interrupted"
        }
    )
    finishReason = maybe(string())
    error = maybe(mapping())
    usage = one(Usage)
    versions = optional(one(Versions), "the versions of this message (not on queued ones)")
    parts = optional(many(PartResult), "with the message's parts, where results say so")
    createdAt = ms()
    updatedAt = ms()


class RunStatus(Schema):
    status = string(metadata={"description": "running or idle"})
    runId = maybe(string())


class ForkPoint(Schema):
    sessionId = string()
    messageId = string()


class SessionResult(Schema):
    id = string()
    projectId = string()
    parentId = maybe(string())
    createdBy = maybe(string())
    title = string()
    agent = string()
    model = maybe(string())
    status = string(metadata={"description": "active or archived"})
    usage = one(Usage)
    forkedFrom = maybe(one(ForkPoint, metadata={"description": "the session it was forked from"}))
    createdAt = ms()
    updatedAt = ms()
    archivedAt = maybe(ms())


class SessionRead(SessionResult):
    run = one(RunStatus)
    messages = optional(many(MessageResult), "when includeMessages is true: the active path")
    queue = optional(many(MessageResult), "when includeMessages is true: messages waiting")


def page_of(item: type[Schema]) -> type[Schema]:
    """The schema of a list result: `{items, nextCursor}`."""
    return Schema.from_dict(
        {"items": many(item), "nextCursor": maybe(string())}, name=f"{item.__name__}Page"
    )


class ApprovalResult(Schema):
    id = string()
    sessionId = string()
    messageId = string()
    partId = string()
    runId = string()
    tool = string()
    arguments = mapping()
    status = string(metadata={"description": "pending, approved, rejected, expired, cancelled..."})
    scope = maybe(string())
    reason = maybe(string())
    requestedBy = maybe(string())
    resolvedBy = maybe(string())
    createdAt = ms()
    expiresAt = ms()
    resolvedAt = maybe(ms())


class SendResult(Schema):
    message = one(MessageResult)
    runId = maybe(string())


class CancelResult(Schema):
    cancelled = boolean()
    runId = maybe(string())


class RunResult(Schema):
    runId = string()


class TodoResult(Schema):
    id = string()
    content = string()
    activeForm = string()
    status = string()
    position = integer()


class SyncResult(Schema):
    session = one(SessionResult)
    messages = many(MessageResult)
    todos = many(TodoResult)
    pendingApprovals = many(ApprovalResult)
    status = one(RunStatus)
    queue = many(MessageResult, metadata={"description": "messages waiting, in running order"})
    seq = integer()


class PathChange(Schema):
    sessionId = string()
    after = maybe(string(metadata={"description": "the last message kept (null: none)"}))
    messages = many(MessageResult, metadata={"description": "what follows it now, with parts"})


class ModelUsage(Schema):
    model = string()
    answers = integer()
    inputTokens = integer()
    outputTokens = integer()
    cachedTokens = integer()
    cost = number()


class ProjectUsage(Schema):
    projectId = string()
    since = maybe(ms())
    until = maybe(ms())
    answers = integer()
    inputTokens = integer()
    outputTokens = integer()
    cachedTokens = integer()
    cost = number()
    byModel = many(ModelUsage)


class RuleResult(Schema):
    tool = string()
    action = string()
    pattern = string()


class AgentResult(Schema):
    name = string()
    description = string()
    prompt = string()
    model = maybe(string())
    tools = maybe(many(fields.String()))
    maxSteps = integer()
    rules = many(RuleResult)
    builtin = boolean()


class CustomToolResult(Schema):
    id = string()
    projectId = string()
    name = string()
    description = string()
    parameters = mapping()
    kind = string()
    config = mapping(metadata={"description": "secrets as {secret:NAME}"})
    enabled = boolean()
    createdBy = maybe(string())
    createdAt = ms()
    updatedAt = ms()


class ToolResult(Schema):
    name = string()
    description = string()
    parameters = mapping()
    source = string(metadata={"description": "builtin, plugin or custom"})
    readOnly = boolean()
    needsExec = boolean()
    id = optional(string(), "custom tools only")
    kind = optional(string(), "custom tools only: command, http or mcp")
    config = optional(mapping(), "custom tools only; secrets as {secret:NAME}")
    enabled = optional(boolean(), "custom tools only")


class ProjectResult(Schema):
    id = string()
    name = string()
    description = string()
    path = maybe(string())
    ownerId = string()
    role = optional(string(), "the caller's role (not in events)")
    createdAt = ms()
    updatedAt = ms()


class MemberResult(Schema):
    projectId = string()
    userId = string()
    userName = string()
    role = string()
    createdAt = ms()


class UserResult(Schema):
    id = string()
    name = string()
    isAdmin = boolean()
    canExecuteCode = boolean()


class AuthResult(Schema):
    kind = string(metadata={"description": "token or apikey"})
    projectId = maybe(string(metadata={"description": "the one project an API key is for"}))
    expiresAt = maybe(ms())


class MeResult(Schema):
    user = one(UserResult)
    auth = one(AuthResult)


class ApiKeyResult(Schema):
    id = string()
    name = string()
    hint = string(metadata={"description": "the first characters of the key"})
    userId = string()
    projectId = maybe(string())
    createdAt = ms()
    lastUsedAt = maybe(ms())
    revokedAt = maybe(ms())


class Nothing(Schema):
    """No result: `null` (REST answers 204); `system.describe` publishes `{"type": "null"}`."""
