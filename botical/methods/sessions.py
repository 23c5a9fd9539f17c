"""sessions.*: create, list, get, update, archive, sync, fork; and the `session` scope."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from marshmallow import Schema, fields, validate

from botical.auth.permissions import READ, WRITE
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.jsonout import JSONText
from botical.methods import MethodContext, Scope, method, rest
from botical.methods import results as r
from botical.schema import Bool, Int
from botical.services.pagination import MAX_LIMIT

if TYPE_CHECKING:
    from botical.app import Botical

PROJECT = fields.String(required=True, validate=validate.Length(max=40))
SESSION = fields.String(required=True, validate=validate.Length(max=40))
TITLE = fields.String(validate=validate.Length(max=500))
AGENT = fields.String(validate=validate.Length(min=1, max=64))
MODEL = fields.String(validate=validate.Length(min=1, max=200), allow_none=True)
LIMIT = Int(validate=validate.Range(min=1, max=MAX_LIMIT))
CURSOR = fields.String(validate=validate.Length(max=200))


class CreateParams(Schema):
    projectId = PROJECT
    title = TITLE
    agent = AGENT
    parentId = fields.String(validate=validate.Length(max=40))
    model = MODEL


class ListParams(Schema):
    projectId = PROJECT
    status = fields.String(validate=validate.OneOf(["active", "archived"]))
    limit = LIMIT
    cursor = CURSOR


class GetParams(Schema):
    sessionId = SESSION
    includeMessages = Bool(load_default=False)


class UpdateParams(Schema):
    sessionId = SESSION
    title = TITLE
    agent = AGENT
    model = MODEL


class SessionParams(Schema):
    sessionId = SESSION


class ForkParams(Schema):
    sessionId = SESSION
    messageId = fields.String(required=True, validate=validate.Length(max=40))
    title = TITLE


@rest("POST /api/projects/{projectId}/sessions", 201)
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


@rest("GET /api/projects/{projectId}/sessions")
@method("sessions.list", ListParams, r.page_of(r.SessionResult), role=READ)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a project's sessions, newest first, with cursor paging."""
    return await ctx.app.sessions.list(
        ctx.project_id, p.get("status"), p.get("limit"), p.get("cursor")
    )


def _cached(ctx: MethodContext, p: dict[str, Any]) -> JSONText | None:
    return ctx.app.sessions.cached_json(p["sessionId"], p["includeMessages"])


@rest("GET /api/sessions/{sessionId}")
@method("sessions.get", GetParams, r.SessionRead, role=READ, scope="session", now=_cached)
async def get(ctx: MethodContext, p: dict[str, Any]) -> JSONText:
    """Get a session and its run status, with its messages and parts when asked."""
    return await ctx.app.sessions.get_json(p["sessionId"], p["includeMessages"])


@rest("PATCH /api/sessions/{sessionId}")
@method("sessions.update", UpdateParams, r.SessionResult, role=WRITE, scope="session")
async def update(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a session's title, agent or model."""
    changes = {k: v for k, v in p.items() if k != "sessionId"}
    return await ctx.app.sessions.update(p["sessionId"], changes)


@rest("POST /api/sessions/{sessionId}/archive")
@method("sessions.archive", SessionParams, r.SessionResult, role=WRITE, scope="session")
async def archive(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Archive a session (its run, if any, is cancelled and its queue dropped)."""
    archived = await ctx.app.sessions.archive(p["sessionId"])
    await ctx.app.runner.cancel(p["sessionId"])
    return archived


@rest("POST /api/sessions/{sessionId}/fork", 201)
@method("sessions.fork", ForkParams, r.SessionResult, role=WRITE, scope="session")
async def fork(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Start a new session in the same project from the path up to a message."""
    check_id(p["messageId"], "msg", "messageId")
    return await ctx.app.branches.fork(
        p["sessionId"], p["messageId"], ctx.identity.user_id, p.get("title")
    )


@method("sessions.sync", SessionParams, r.SyncResult, role=READ, scope="session")
async def sync(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Return the whole state of a session and the channel seq it is consistent with."""
    app = ctx.app
    session_id = p["sessionId"]
    # Taken before the reads, together with the text streamed so far: stored text lags behind
    # the deltas (it is written in batches), so the open part's text must be the one at `seq`.
    seq, live = await app.broadcaster.snapshot(f"session:{session_id}")
    session = await app.sessions.get(session_id, include_messages=True)
    messages, status = session.pop("messages"), session.pop("run")
    queue = session.pop("queue")  # issue 15: messages waiting to run, in the order they will
    for message in messages:
        for part in message["parts"]:
            if part["id"] in live:
                part.update(text=live[part["id"]], status="streaming")
    return {
        "session": session,
        "messages": messages,
        "todos": await app.todos.list(session_id),
        "pendingApprovals": await app.approvals.pending(session_id),
        "status": status,
        "queue": queue,
        "seq": seq,
    }


async def _session_project(app: Botical, session_id: str, cached_only: bool) -> str:
    return await app.permissions.session_project(session_id, cached_only)


SESSION_SCOPE = Scope("session", "sessionId", "sess", _session_project, "Session not found")


@hookimpl
def botical_register_scopes(register) -> None:
    register(SESSION_SCOPE)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
