"""The built-in channels (`session:`, `project:`, `user:`), registered like any plugin's, and
`subscriptions.list`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from marshmallow import Schema

from botical.auth.identity import Identity
from botical.auth.permissions import READ
from botical.bus import Event
from botical.errors import Forbidden
from botical.hookspecs import hookimpl
from botical.ids import check_id
from botical.methods import MethodContext, method
from botical.methods import events as e
from botical.methods import results as r
from botical.websocket.broadcaster import ChannelKind

if TYPE_CHECKING:
    from botical.app import Botical

SESSION_EVENTS = (
    "message.created",
    "message.updated",
    "message.deleted",
    "path.changed",
    "part.created",
    "part.updated",
    "session.updated",
    "tool.approval_required",
    "tool.approval_resolved",
    "agent.status_changed",
    "todo.updated",
)
PROJECT_EVENTS = ("session.created", "session.updated", "agent.status_changed")
USER_EVENTS = (
    "tool.approval_required",
    "project.created",
    "member.added",
    "member.updated",
    "member.removed",
    "project.deleted",
)


def _route(events: tuple[str, ...], attr: str) -> Callable[[Event], tuple[str, ...]]:
    names = frozenset(events)

    def route(event: Event) -> tuple[str, ...]:
        value = getattr(event, attr)
        return (value,) if value and event.name in names else ()

    return route


async def _authorize_session(app: Botical, identity: Identity, session_id: str) -> None:
    await app.permissions.require_session(identity, check_id(session_id, "sess"), READ)


async def _authorize_project(app: Botical, identity: Identity, project_id: str) -> None:
    await app.permissions.require(identity, check_id(project_id, "prj"), READ)


async def _authorize_user(app: Botical, identity: Identity, user_id: str) -> None:
    if user_id != identity.user_id:
        raise Forbidden("Only your own user channel")
    if identity.project_scope is not None:  # it would carry other projects' approvals
        raise Forbidden("A project-scoped API key cannot subscribe to a user channel")


def _kind(prefix: str, events: tuple[str, ...], attr: str, authorize: Any, about: str):
    schemas = {name: e.EVENTS[name] for name in sorted(events)}
    return ChannelKind(prefix, _route(events, attr), authorize, schemas, about)


BUILTIN_CHANNELS = (
    _kind(
        "session",
        SESSION_EVENTS,
        "session_id",
        _authorize_session,
        "Everything that happens in one session",
    ),
    _kind(
        "project",
        PROJECT_EVENTS,
        "project_id",
        _authorize_project,
        "Sessions of a project and their run status",
    ),
    _kind(
        "user",
        USER_EVENTS,
        "user_id",
        _authorize_user,
        "Approvals for your sessions, membership notices",
    ),
)


class NoParams(Schema):
    pass


class ChannelSeq(Schema):
    channel = r.string()
    seq = r.integer()


class SubscriptionList(Schema):
    items = r.many(ChannelSeq)


@method("subscriptions.list", NoParams, SubscriptionList, role=None, scope=None)
async def list_(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """List this connection's channels with their current seq (WebSocket only)."""
    assert ctx.connection is not None  # no REST route: only sockets call it
    broadcaster = ctx.app.broadcaster
    channels = list(ctx.connection.subscriptions)
    return {"items": [{"channel": c, "seq": await broadcaster.current_seq(c)} for c in channels]}


@hookimpl
def botical_register_channels(register) -> None:
    for kind in BUILTIN_CHANNELS:
        register(kind)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])
