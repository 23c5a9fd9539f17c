"""Frames of the Botical WebSocket protocol (v1): schemas for what clients send, builders for
what the server sends, error and close codes. See docs/protocol.md."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from botical import jsonin
from botical.errors import BoticalError, InvalidFrame, ValidationError
from botical.jsonout import JSONText, dumps
from botical.schema import quick_loader

PROTOCOL_VERSION = 1
SUBPROTOCOL = "botical.v1"
TOKEN_SUBPROTOCOL_PREFIX = "botical.token."

CLOSE_GOING_AWAY = 1001  # server shutting down: reconnect
CLOSE_TOO_LARGE = 1009
CLOSE_INTERNAL = 1011
CLOSE_AUTH = 4001  # token expired or revoked
CLOSE_TOO_SLOW = 4008  # could not keep up: reconnect and resync
CLOSE_ABUSE = 4029  # rate limit abuse

MAX_CHANNELS_PER_FRAME = 100
_id = fields.String(validate=validate.Length(min=1, max=128))
_channel = fields.String(validate=validate.Length(min=1, max=200))


class _Frame(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True)


class RequestFrame(_Frame):
    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    method = fields.String(required=True, validate=validate.Length(min=1, max=128))
    params = fields.Dict(load_default=dict)


class SubscribeFrame(_Frame):
    channels = fields.List(
        _channel, required=True, validate=validate.Length(min=1, max=MAX_CHANNELS_PER_FRAME)
    )
    id = _id
    since = fields.Dict(keys=_channel, values=fields.Integer(validate=validate.Range(min=0)))
    epoch = fields.String(validate=validate.Length(max=64))


class UnsubscribeFrame(_Frame):
    channels = fields.List(
        _channel, required=True, validate=validate.Length(min=1, max=MAX_CHANNELS_PER_FRAME)
    )
    id = _id


class PingFrame(_Frame):
    id = _id


FRAME_SCHEMAS: dict[str, Schema] = {
    "request": RequestFrame(),
    "subscribe": SubscribeFrame(),
    "unsubscribe": UnsubscribeFrame(),
    "ping": PingFrame(),
}


# What the schema would load, for well-formed frames, without its per-frame cost
_QUICK = {kind: quick_loader(schema) for kind, schema in FRAME_SCHEMAS.items()}


def parse_frame(text: str | bytes) -> dict[str, Any]:
    """Decode and validate one client frame; PARSE_ERROR or INVALID_FRAME carry the id if any."""
    try:
        raw = jsonin.loads(text, "Frame")
    except ValidationError as exc:
        # nested too deeply, or text that cannot be stored: details say which
        raise InvalidFrame("Frame content is not accepted", details=exc.details) from None
    if not isinstance(raw, dict):
        raise InvalidFrame("A frame must be a JSON object")
    frame_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    kind = raw.get("type")
    if not isinstance(kind, str) or (schema := FRAME_SCHEMAS.get(kind)) is None:
        raise _with_id(
            InvalidFrame(f"Unknown frame type; use one of {sorted(FRAME_SCHEMAS)}"), frame_id
        )
    quick = _QUICK.get(kind)
    fast = quick(raw) if quick is not None else None
    if fast is not None:  # a well-formed ping or request (nearly all traffic), loaded cheaply
        return fast
    try:
        return schema.load(raw)
    except SchemaError as exc:
        raise _with_id(InvalidFrame("Invalid frame", details=exc.messages), frame_id) from None


def _with_id(error: BoticalError, frame_id: str | None) -> BoticalError:
    error.frame_id = frame_id  # type: ignore[attr-defined]
    return error


def frame_id_of(error: BoticalError) -> str | None:
    """The request id a parse or frame error could still read, else None."""
    return getattr(error, "frame_id", None)


def response(request_id: str | None, result: Any) -> str:
    if isinstance(result, JSONText):  # encoded once, when it was cached
        return f'{{"type":"response","id":{dumps(request_id)},"result":{result}}}'
    return dumps({"type": "response", "id": request_id, "result": result})


def error_response(request_id: str | None, error: BoticalError) -> str:
    return dumps({"type": "response", "id": request_id, "error": error.to_payload()})


def pong(frame_id: str | None) -> str:
    return dumps({"type": "pong", "id": frame_id}) if frame_id else '{"type":"pong"}'


def event_frame(channel: str, event: str, data_json: str, seq: int) -> str:
    """An event frame from data already serialized once (shared by every subscriber)."""
    return (
        f'{{"type":"event","channel":{dumps(channel)},"event":{dumps(event)},'
        f'"data":{data_json},"seq":{seq}}}'
    )


def delta_frame(channel: str, header_json: str, delta: str, seq: int, first_seq: int) -> str:
    """A `part.updated` delta frame; `mergedFrom` says which earlier seqs it stands for."""
    merged = f',"mergedFrom":{first_seq}' if first_seq != seq else ""
    data = f'{{"part":{header_json},"delta":{dumps(delta)}}}'
    return (
        f'{{"type":"event","channel":{dumps(channel)},"event":"part.updated",'
        f'"data":{data},"seq":{seq}{merged}}}'
    )


def connection_event(event: str, data: dict[str, Any]) -> str:
    """An event on the `connection` channel (not sequenced: it concerns this socket only)."""
    return dumps({"type": "event", "channel": "connection", "event": event, "data": data, "seq": 0})
