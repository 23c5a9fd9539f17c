"""Subscriptions: the built-in channels (`session:`, `project:`, `user:`), the subscribe and
unsubscribe frames, and `subscriptions.list`."""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields

from botical.auth.identity import Identity
from botical.auth.permissions import READ
from botical.bus import Event
from botical.errors import BoticalError, Forbidden, RateLimited
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.websocket.auth import authorize_channel
from botical.websocket.broadcaster import ChannelKind
from botical.websocket.handlers import MethodContext, method, register_module

SESSION_EVENTS = frozenset(
    {
        "message.created",
        "message.updated",
        "part.created",
        "part.updated",
        "session.updated",
        "tool.approval_required",
        "tool.approval_resolved",
        "agent.status_changed",
        "todo.updated",
    }
)
PROJECT_EVENTS = frozenset({"session.created", "session.updated", "agent.status_changed"})
USER_EVENTS = frozenset(
    {
        "tool.approval_required",
        "project.created",
        "member.added",
        "member.updated",
        "member.removed",
        "project.deleted",
    }
)


def _route(events: frozenset[str], attr: str):
    def route(event: Event) -> tuple[str, ...]:
        value = getattr(event, attr)
        return (value,) if value and event.name in events else ()

    return route


async def _authorize_session(app: Any, identity: Identity, session_id: str) -> None:
    await app.permissions.require_session(identity, check_id(session_id, "sess"), READ)


async def _authorize_project(app: Any, identity: Identity, project_id: str) -> None:
    await app.permissions.require(identity, check_id(project_id, "prj"), READ)


async def _authorize_user(app: Any, identity: Identity, user_id: str) -> None:
    if user_id != identity.user_id:
        raise Forbidden("Only your own user channel")
    if identity.project_scope is not None:  # it would carry other projects' approvals
        raise Forbidden("A project-scoped API key cannot subscribe to a user channel")


BUILTIN_CHANNELS = (
    ChannelKind(
        "session",
        _route(SESSION_EVENTS, "session_id"),
        _authorize_session,
        tuple(sorted(SESSION_EVENTS)),
        "Everything that happens in one session",
    ),
    ChannelKind(
        "project",
        _route(PROJECT_EVENTS, "project_id"),
        _authorize_project,
        tuple(sorted(PROJECT_EVENTS)),
        "Sessions of a project and their run status",
    ),
    ChannelKind(
        "user",
        _route(USER_EVENTS, "user_id"),
        _authorize_user,
        tuple(sorted(USER_EVENTS)),
        "Approvals for your sessions, membership notices",
    ),
)


@hookimpl
def botical_register_channels(register) -> None:
    for kind in BUILTIN_CHANNELS:
        register(kind)


async def subscribe(app: Any, connection: Any, frame: dict[str, Any]) -> dict[str, Any]:
    """Authorize each channel, replay what was missed since the given seq, then subscribe."""
    since: dict[str, int] = frame.get("since") or {}
    # Seqs restart with every server process: replay only for a client that proves, with the
    # epoch from its connection.ready, that its seqs come from this one.
    epoch_ok = frame.get("epoch") == app.epoch
    subscribed, rejected = [], []
    for channel in dict.fromkeys(frame["channels"]):
        try:
            if (
                channel not in connection.subscriptions
                and len(connection.subscriptions) >= connection.limits.max_channels
            ):
                raise RateLimited("Too many channels on this connection")
            await authorize_channel(app, connection.identity, app.broadcaster.kinds, channel)
        except BoticalError as exc:
            rejected.append({"channel": channel, "error": exc.to_payload()})
            continue
        if connection.closed:
            break
        wanted = since.get(channel) if epoch_ok else None
        recovered = app.broadcaster.attach(connection, channel, wanted)
        subscribed.append(
            {"channel": channel, "seq": app.broadcaster.seq(channel), "recovered": recovered}
        )
    return {"subscribed": subscribed, "rejected": rejected}


def unsubscribe(app: Any, connection: Any, frame: dict[str, Any]) -> dict[str, Any]:
    for channel in frame["channels"]:
        app.connections.unsubscribe(connection, channel)
    return {"unsubscribed": list(frame["channels"])}


class NoParams(Schema):
    pass


class SubscriptionList(Schema):
    items = fields.List(fields.Dict())


@method("subscriptions.list", NoParams, SubscriptionList, role=None, scope=None)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List this connection's channels with their current seq."""
    broadcaster = ctx.app.broadcaster
    return {
        "items": [{"channel": c, "seq": broadcaster.seq(c)} for c in ctx.connection.subscriptions]
    }


@hookimpl
def botical_register_methods(register) -> None:
    register_module(register, sys.modules[__name__])
