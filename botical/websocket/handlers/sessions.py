"""sessions.*: create, list, get, update, archive, sync."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.jsonout import JSONText
from botical.services.pagination import MAX_LIMIT
from botical.websocket.handlers import MethodContext, method, register_module
from botical.websocket.handlers import results as r

_project = fields.String(required=True, validate=validate.Length(max=40))
_session = fields.String(required=True, validate=validate.Length(max=40))
_title = fields.String(validate=validate.Length(max=500))
_agent = fields.String(validate=validate.Length(min=1, max=64))
_model = fields.String(validate=validate.Length(min=1, max=200), allow_none=True)


class CreateParams(Schema):
    projectId = _project
    title = _title
    agent = _agent
    parentId = fields.String(validate=validate.Length(max=40))
    model = _model


class ListParams(Schema):
    projectId = _project
    status = fields.String(validate=validate.OneOf(["active", "archived"]))
    limit = fields.Integer(validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=200))


class GetParams(Schema):
    sessionId = _session
    includeMessages = fields.Boolean(load_default=False)


class UpdateParams(Schema):
    sessionId = _session
    title = _title
    agent = _agent
    model = _model


class SessionParams(Schema):
    sessionId = _session


class SyncParams(Schema):
    sessionId = _session


@method("sessions.create", CreateParams, r.SessionResult, role=WRITE)
async def create(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a session in a project."""
    if "parentId" in p:
        check_id(p["parentId"], "sess", "parentId")
    return await ctx.app.sessions.create(
        ctx.project_id,
        ctx.identity.user_id,
        title=p.get("title", ""),
        agent=p.get("agent", "default"),
        model=p.get("model"),
        parent_id=p.get("parentId"),
    )


@method("sessions.list", ListParams, r.SessionPage, role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a project's sessions, newest first, with cursor paging."""
    return await ctx.app.sessions.list(
        ctx.project_id, p.get("status"), p.get("limit"), p.get("cursor")
    )


def _cached(ctx: MethodContext, p: dict[str, Any]) -> JSONText | None:
    return ctx.app.sessions.cached_json(p["sessionId"], p["includeMessages"])


@method("sessions.get", GetParams, r.SessionResult, role=READ, scope="session", now=_cached)
async def get(ctx: MethodContext, p: dict[str, Any]) -> JSONText:
    """Get a session, with its messages and parts when asked."""
    return await ctx.app.sessions.get_json(p["sessionId"], p["includeMessages"])


@method("sessions.update", UpdateParams, r.SessionResult, role=WRITE, scope="session")
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a session's title, agent or model."""
    changes = {k: v for k, v in p.items() if k != "sessionId"}
    return await ctx.app.sessions.update(p["sessionId"], changes)


@method("sessions.archive", SessionParams, r.SessionResult, role=WRITE, scope="session")
async def archive(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Archive a session (its run, if any, is cancelled)."""
    await ctx.app.runner.cancel(p["sessionId"])
    return await ctx.app.sessions.archive(p["sessionId"])


@method("sessions.sync", SyncParams, r.SyncResult, role=READ, scope="session")
async def sync(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Return the whole state of a session and the channel seq it is consistent with."""
    app = ctx.app
    session_id = p["sessionId"]
    # Taken before the reads, together with the text streamed so far: stored text lags behind
    # the deltas (it is written in batches), so the open part's text must be the one at `seq`.
    seq = app.broadcaster.seq(f"session:{session_id}")
    live = app.runner.live_text(session_id)
    session = await app.sessions.get(session_id, include_messages=True)
    messages = session.pop("messages")
    for message in messages:
        for part in message["parts"]:
            if part["id"] in live:
                part.update(text=live[part["id"]], status="streaming")
    return {
        "session": session,
        "messages": messages,
        "todos": await app.todos_for(session_id),
        "pendingApprovals": await app.approvals.pending(session_id),
        "status": app.runner.status(session_id),
        "seq": seq,
    }


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
