"""messages.*: list, send, cancel, retry, edit, select."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.agent.queue import MODES
from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.methods import MethodContext, method, rest
from botical.methods import results as r
from botical.methods.sessions import AGENT, CURSOR, LIMIT, SESSION

MAX_CONTENT = 200_000
MESSAGE = fields.String(validate=validate.Length(max=40))


class ListParams(Schema):
    sessionId = SESSION
    after = MESSAGE
    limit = LIMIT
    cursor = CURSOR


class SendParams(Schema):
    sessionId = SESSION
    content = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CONTENT))
    agent = AGENT
    model = fields.String(validate=validate.Length(min=1, max=200))
    idempotencyKey = fields.String(validate=validate.Length(min=1, max=128))
    ifBusy = fields.String(
        load_default="reject",
        validate=validate.OneOf(MODES),
        metadata={"description": "while a run is in progress: reject, queue, interrupt, rollback"},
    )


class CancelParams(Schema):
    sessionId = SESSION
    messageId = MESSAGE


class RetryParams(Schema):
    sessionId = SESSION
    messageId = MESSAGE
    agent = AGENT
    model = fields.String(validate=validate.Length(min=1, max=200))


class EditParams(Schema):
    sessionId = SESSION
    messageId = fields.String(required=True, validate=validate.Length(max=40))
    content = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CONTENT))
    agent = AGENT
    model = fields.String(validate=validate.Length(min=1, max=200))


class SelectParams(Schema):
    sessionId = SESSION
    messageId = fields.String(required=True, validate=validate.Length(max=40))


@rest("GET /api/sessions/{sessionId}/messages")
@method("messages.list", ListParams, r.page_of(r.MessageResult), role=READ, scope="session")
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a session's messages with their parts, oldest first."""
    if "after" in p:
        check_id(p["after"], "msg", "after")
    return await ctx.app.messages.list(
        p["sessionId"], p.get("after"), p.get("limit"), p.get("cursor")
    )


@rest("POST /api/sessions/{sessionId}/messages", 202)
@method("messages.send", SendParams, r.SendResult, role=WRITE, scope="session")
async def send(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Send a message (queued, or stopping the run, while busy, as ifBusy says); answers at
    once with the message and run id, the answer streams."""
    return await ctx.app.runner.send(
        ctx.identity,
        ctx.project_id,
        p["sessionId"],
        p["content"],
        agent=p.get("agent"),
        model=p.get("model"),
        idempotency_key=p.get("idempotencyKey"),
        if_busy=p["ifBusy"],
    )


@rest("POST /api/sessions/{sessionId}/cancel")
@method("messages.cancel", CancelParams, r.CancelResult, role=WRITE, scope="session")
async def cancel(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Cancel the session's run, or take a queued message out of the queue."""
    if "messageId" in p:
        check_id(p["messageId"], "msg", "messageId")
    return await ctx.app.runner.cancel(p["sessionId"], p.get("messageId"))


@rest("POST /api/sessions/{sessionId}/retry", 202)
@method("messages.retry", RetryParams, r.RunResult, role=WRITE, scope="session")
async def retry(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Answer a user message again, as a new version of its answer (the last one by default)."""
    if "messageId" in p:
        check_id(p["messageId"], "msg", "messageId")
    return await ctx.app.runner.retry(
        ctx.identity,
        ctx.project_id,
        p["sessionId"],
        p.get("messageId"),
        agent=p.get("agent"),
        model=p.get("model"),
    )


@rest("POST /api/sessions/{sessionId}/messages/{messageId}/edit", 202)
@method("messages.edit", EditParams, r.SendResult, role=WRITE, scope="session")
async def edit(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Send a new version of a user message and answer it; the old one stays a version."""
    check_id(p["messageId"], "msg", "messageId")
    return await ctx.app.runner.edit(
        ctx.identity,
        ctx.project_id,
        p["sessionId"],
        p["messageId"],
        p["content"],
        agent=p.get("agent"),
        model=p.get("model"),
    )


@rest("POST /api/sessions/{sessionId}/messages/{messageId}/select")
@method("messages.select", SelectParams, r.PathChange, role=WRITE, scope="session")
async def select(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Show another version of a message; returns the active path from it down."""
    check_id(p["messageId"], "msg", "messageId")
    return await ctx.app.branches.select(p["sessionId"], p["messageId"])


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
