"""The `subscribe` and `unsubscribe` frames: authorize each channel, replay what a client
missed since its seq, and attach it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botical.errors import BoticalError, Forbidden, RateLimited, ValidationError
from botical.plugins import await_me_maybe
from botical.websocket.broadcaster import ChannelKind
from botical.websocket.connections import Connection

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.auth.identity import Identity


def split_channel(channel: str) -> tuple[str, str]:
    """`"session:sess_1"` -> `("session", "sess_1")`; VALIDATION_ERROR when malformed."""
    prefix, sep, ident = channel.partition(":")
    if not sep or not prefix or not ident:
        raise ValidationError(details={"channel": ["Use the form kind:id."]})
    return prefix, ident


async def authorize_channel(
    app: Botical, identity: Identity, kinds: Mapping[str, ChannelKind], channel: str
) -> None:
    """Raise FORBIDDEN unless the identity may subscribe to `channel` (of one of `kinds`)."""
    prefix, ident = split_channel(channel)
    kind = kinds.get(prefix)
    if kind is None:
        raise ValidationError(details={"channel": [f"Unknown channel kind {prefix!r}."]})
    try:
        await await_me_maybe(kind.authorize(app, identity, ident))  # plugins may be sync
    except BoticalError:  # NOT_FOUND included: never reveal whether the channel exists
        raise Forbidden("You may not subscribe to this channel") from None


async def subscribe(app: Botical, connection: Connection, frame: dict[str, Any]) -> dict[str, Any]:
    """Authorize each channel, replay what was missed since the given seq, then subscribe."""
    since: dict[str, int] = frame.get("since") or {}
    # Seqs restart with every server process: replay only for a client that proves, with the
    # epoch from its connection.ready, that its seqs come from this one.
    broadcaster = app.broadcaster
    epoch_ok = frame.get("epoch") == broadcaster.epoch
    subscribed, rejected = [], []
    for channel in dict.fromkeys(frame["channels"]):
        try:
            if (
                channel not in connection.subscriptions
                and len(connection.subscriptions) >= connection.limits.max_channels
            ):
                raise RateLimited("Too many channels on this connection")
            await authorize_channel(app, connection.identity, broadcaster.kinds, channel)
        except BoticalError as exc:
            rejected.append({"channel": channel, "error": exc.to_payload()})
            continue
        if connection.closed:
            break
        wanted = since.get(channel) if epoch_ok else None
        recovered = await broadcaster.subscribe(connection, channel, wanted)
        seq = await broadcaster.current_seq(channel)
        subscribed.append({"channel": channel, "seq": seq, "recovered": recovered})
    return {"subscribed": subscribed, "rejected": rejected}


def unsubscribe(app: Botical, connection: Connection, frame: dict[str, Any]) -> dict[str, Any]:
    """Detach the connection from each channel (unknown ones are ignored)."""
    for channel in frame["channels"]:
        app.connections.unsubscribe(connection, channel)
    return {"unsubscribed": list(frame["channels"])}
