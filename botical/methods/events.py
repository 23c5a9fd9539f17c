"""What the server publishes: the data schemas of the built-in events, by event name, and of
the events on the `connection` channel. `system.describe` publishes them as JSON Schema with
the channels that carry them; tests/integration/test_contract.py checks every event a test
client receives against them. The rules for fields are those of `methods.results`."""

from __future__ import annotations

from marshmallow import Schema

from botical.methods.results import (
    ApprovalResult,
    MemberResult,
    MessageResult,
    PartResult,
    PathChange,
    ProjectResult,
    SessionResult,
    TodoResult,
    boolean,
    integer,
    many,
    mapping,
    number,
    one,
    optional,
    string,
)


class SessionEvent(Schema):
    session = one(SessionResult)


class MessageEvent(Schema):
    message = one(MessageResult)


class PartEvent(Schema):
    part = one(PartResult)
    delta = optional(string(), "streamed text to append (part.updated while streaming)")


class MessageDeletedEvent(Schema):
    sessionId = string()
    messageId = string()


class ApprovalEvent(Schema):
    approval = one(ApprovalResult)


class StatusEvent(Schema):
    sessionId = string()
    status = string(
        metadata={"description": "idle, thinking, streaming, running_tool, waiting_approval, error"}
    )
    runId = string()


class TodoEvent(Schema):
    sessionId = string()
    todos = many(TodoResult)


class MemberEvent(Schema):
    member = one(MemberResult)


class MemberRemovedEvent(Schema):
    projectId = string()
    userId = string()


class ProjectEvent(Schema):
    project = one(ProjectResult)


class ProjectDeletedEvent(Schema):
    projectId = string()


EVENTS: dict[str, type[Schema]] = {
    "session.created": SessionEvent,
    "session.updated": SessionEvent,
    "message.created": MessageEvent,
    "message.updated": MessageEvent,
    "message.deleted": MessageDeletedEvent,
    "path.changed": PathChange,
    "part.created": PartEvent,
    "part.updated": PartEvent,
    "tool.approval_required": ApprovalEvent,
    "tool.approval_resolved": ApprovalEvent,
    "agent.status_changed": StatusEvent,
    "todo.updated": TodoEvent,
    "member.added": MemberEvent,
    "member.updated": MemberEvent,
    "member.removed": MemberRemovedEvent,
    "project.created": ProjectEvent,
    "project.deleted": ProjectDeletedEvent,
}


class Limits(Schema):
    maxMessageSize = integer()
    maxChannels = integer()
    maxInflight = integer()
    rateLimit = number()
    rateBurst = integer()


class ReadyEvent(Schema):
    connectionId = string()
    userId = string()
    protocol = integer()
    epoch = string()
    heartbeatMs = integer()
    limits = one(Limits)


class ClosingEvent(Schema):
    reason = string()
    reconnect = boolean()


class ChannelError(Schema):
    channel = string()
    error = mapping()


# Events on the `connection` channel: about this socket only, never sequenced (seq 0).
CONNECTION_EVENTS: dict[str, type[Schema]] = {
    "connection.ready": ReadyEvent,
    "connection.closing": ClosingEvent,
    "subscription.rejected": ChannelError,
    "subscription.revoked": ChannelError,
}
