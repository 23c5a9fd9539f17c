"""An example Botical plugin: the template to copy when writing your own.

It adds, without touching Botical itself:

- two WebSocket methods, `example.echo` (any caller) and `example.publish` (members of a
  project), declared with `@method` and registered by `botical_register_methods`;
- a channel kind `example:{projectId}` that carries the `example.note` events `example.publish`
  puts on the bus, open to viewers of the project, registered by `botical_register_channels`.
"""

from __future__ import annotations

import sys
from typing import Any

from marshmallow import Schema, fields, validate

from botical import (
    READ,
    WRITE,
    ChannelKind,
    Event,
    Identity,
    MethodContext,
    check_id,
    hookimpl,
    method,
)

NOTE_EVENT = "example.note"
# A short slug. `(?!\n)` because Python's `$` also matches before a final newline; the pattern
# stays valid JSON Schema, which system.describe publishes.
TOPIC = r"^[a-z0-9][a-z0-9-]{0,31}(?!\n)$"


class EchoParams(Schema):
    text = fields.String(required=True, validate=validate.Length(max=1000))


class EchoResult(Schema):
    text = fields.String(required=True)
    user = fields.String(required=True, metadata={"description": "the caller's user id"})


class PublishParams(Schema):
    projectId = fields.String(required=True, validate=validate.Length(max=40))
    topic = fields.String(
        required=True,
        validate=validate.Regexp(TOPIC, error="Use a short slug: a-z, 0-9 and -."),
    )
    message = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class Note(Schema):
    topic = fields.String(required=True)
    message = fields.String(required=True)
    by = fields.String(
        required=True, metadata={"description": "the user id of whoever published it"}
    )


@method("example.echo", EchoParams, EchoResult, role=None, scope=None)
async def echo(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Send the text back, with the caller's user id."""
    return {"text": p["text"], "user": ctx.identity.user_id}


@method("example.publish", PublishParams, Note, role=WRITE)
async def publish(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Publish a note to the project's example channel."""
    note = {"topic": p["topic"], "message": p["message"], "by": ctx.identity.user_id}
    ctx.app.bus.publish(Event(NOTE_EVENT, note, project_id=ctx.project_id))
    return note


def _route(event: Event) -> tuple[str, ...]:
    """The ids of the `example:` channels an event goes to."""
    if event.name == NOTE_EVENT and event.project_id:
        return (event.project_id,)
    return ()


async def _authorize(app: Any, identity: Identity, project_id: str) -> None:
    """Let viewers (and up) of the project subscribe; anyone else is refused."""
    await app.permissions.require(identity, check_id(project_id, "prj"), READ)


EXAMPLE_CHANNEL = ChannelKind(
    "example", _route, _authorize, {NOTE_EVENT: Note}, "Notes published with example.publish"
)


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])


@hookimpl
def botical_register_channels(register) -> None:
    register(EXAMPLE_CHANNEL)
