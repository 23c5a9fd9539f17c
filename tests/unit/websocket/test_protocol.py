"""Frame parsing and the frames the server builds: exact shapes, errors that keep the id."""

from __future__ import annotations

import json

import pytest

from botical import jsonin
from botical.errors import BoticalError, InvalidFrame, NotFound, ParseError, ValidationError
from botical.jsonout import JSONText, dumps
from botical.websocket import protocol
from botical.websocket.protocol import frame_id_of, parse_frame


def _raises(text: str | bytes, error: type[BoticalError]) -> BoticalError:
    with pytest.raises(error) as caught:
        parse_frame(text)
    return caught.value


# --- valid frames ---


def test_request_frame():
    frame = parse_frame(
        '{"type":"request","id":"r1","method":"sessions.get","params":{"sessionId":"s"}}'
    )
    assert frame == {
        "type": "request",
        "id": "r1",
        "method": "sessions.get",
        "params": {"sessionId": "s"},
    }


def test_request_frame_params_default_to_an_empty_object():
    frame = parse_frame('{"type":"request","id":"r1","method":"system.describe"}')
    assert frame["params"] == {}


def test_subscribe_frame_with_every_optional_field():
    text = json.dumps(
        {
            "type": "subscribe",
            "id": "s1",
            "channels": ["session:sess_1", "project:prj_1"],
            "since": {"session:sess_1": 4},
            "epoch": "abc",
        }
    )
    assert parse_frame(text) == json.loads(text)


def test_subscribe_frame_with_channels_only():
    assert parse_frame('{"type":"subscribe","channels":["user:usr_1"]}') == {
        "type": "subscribe",
        "channels": ["user:usr_1"],
    }


def test_unsubscribe_frame():
    assert parse_frame('{"type":"unsubscribe","channels":["a:b"],"id":"u1"}') == {
        "type": "unsubscribe",
        "channels": ["a:b"],
        "id": "u1",
    }


@pytest.mark.parametrize("text", ['{"type":"ping"}', '{"type":"ping","id":"p1"}'])
def test_ping_frame(text):
    assert parse_frame(text) == json.loads(text)


def test_bytes_are_decoded():
    assert parse_frame(b'{"type":"ping","id":"p"}') == {"type": "ping", "id": "p"}


# --- invalid frames ---


@pytest.mark.parametrize("text", ["", "{", "not json", '{"type":"ping",}', b"\xff\xfe\x00"])
def test_text_that_is_not_json_is_a_parse_error(text):
    error = _raises(text, ParseError)
    assert error.code == "PARSE_ERROR"
    assert frame_id_of(error) is None


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"type":"ping","id":"p","x":' + "[" * 64 + "]" * 64 + "}",
        '{"type":"request","id":"r","method":"m","params":' + '{"a":' * 64 + "1" + "}" * 65,
    ],
)
def test_text_nested_too_deeply_is_an_invalid_frame(text):
    error = _raises(text, InvalidFrame)
    assert error.details == {"_schema": [jsonin.TOO_DEEP]}
    assert frame_id_of(error) is None


@pytest.mark.parametrize("text", ["[]", '"ping"', "3", "null", '[{"type":"ping","id":"p"}]'])
def test_a_frame_must_be_an_object(text):
    error = _raises(text, InvalidFrame)
    assert error.code == "INVALID_FRAME"
    assert frame_id_of(error) is None


@pytest.mark.parametrize("kind", ['"nope"', "null", "3", '["request"]', '{"a":1}'])
def test_unknown_or_malformed_type_is_invalid_and_keeps_the_id(kind):
    error = _raises(f'{{"type":{kind},"id":"x1"}}', InvalidFrame)
    assert frame_id_of(error) == "x1"


def test_missing_type_is_invalid():
    error = _raises('{"id":"x1","method":"a.b"}', InvalidFrame)
    assert frame_id_of(error) == "x1"


def test_missing_required_field_is_named():
    error = _raises('{"type":"request","id":"r9","params":{}}', InvalidFrame)
    assert frame_id_of(error) == "r9"
    assert set(error.details) == {"method"}


def test_request_without_id_has_no_id_to_answer():
    error = _raises('{"type":"request","method":"a.b"}', InvalidFrame)
    assert frame_id_of(error) is None
    assert set(error.details) == {"id"}


def test_unknown_field_is_named():
    error = _raises('{"type":"ping","id":"p2","extra":true}', InvalidFrame)
    assert frame_id_of(error) == "p2"
    assert set(error.details) == {"extra"}


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "request", "id": "r", "method": 5}, "method"),
        ({"type": "request", "id": "r", "method": "a.b", "params": [1]}, "params"),
        ({"type": "request", "id": "r", "method": "a.b", "params": None}, "params"),
        ({"type": "subscribe", "id": "r", "channels": "session:s"}, "channels"),
        ({"type": "subscribe", "id": "r", "channels": [7]}, "channels"),
        ({"type": "subscribe", "id": "r", "channels": ["a:b"], "since": {"a:b": -1}}, "since"),
        ({"type": "subscribe", "id": "r", "channels": ["a:b"], "since": {"a:b": "x"}}, "since"),
        ({"type": "subscribe", "id": "r", "channels": ["a:b"], "since": [1]}, "since"),
        ({"type": "subscribe", "id": "r", "channels": []}, "channels"),
        ({"type": "unsubscribe", "id": "r", "channels": [""]}, "channels"),
    ],
)
def test_wrong_types_are_named_and_keep_the_id(frame, field):
    error = _raises(json.dumps(frame), InvalidFrame)
    assert frame_id_of(error) == "r"
    assert field in error.details


@pytest.mark.parametrize("frame_id", [5, None, ["r"], {"id": "r"}, True])
def test_an_id_that_is_not_a_string_cannot_be_read(frame_id):
    error = _raises(json.dumps({"type": "ping", "id": frame_id}), InvalidFrame)
    assert frame_id_of(error) is None
    assert "id" in error.details


def test_too_many_channels():
    channels = [f"session:sess_{i}" for i in range(protocol.MAX_CHANNELS_PER_FRAME + 1)]
    error = _raises(
        json.dumps({"type": "subscribe", "id": "s", "channels": channels}), InvalidFrame
    )
    assert frame_id_of(error) == "s"
    assert "channels" in error.details


def test_the_most_channels_allowed():
    channels = [f"session:sess_{i}" for i in range(protocol.MAX_CHANNELS_PER_FRAME)]
    frame = parse_frame(json.dumps({"type": "unsubscribe", "channels": channels}))
    assert frame["channels"] == channels


def test_over_long_channel_name():
    text = json.dumps({"type": "subscribe", "channels": ["session:" + "s" * 200]})
    assert "channels" in _raises(text, InvalidFrame).details


@pytest.mark.parametrize("kind", ["request", "ping"])
def test_over_long_id(kind):
    long_id = "r" * 129
    frame = {"type": kind, "id": long_id}
    if kind == "request":
        frame["method"] = "a.b"
    error = _raises(json.dumps(frame), InvalidFrame)
    assert "id" in error.details
    assert frame_id_of(error) == long_id  # a string id can be read, so the error answers it


def test_longest_id_allowed():
    assert parse_frame(json.dumps({"type": "ping", "id": "r" * 128}))["id"] == "r" * 128


def test_frame_id_of_an_unrelated_error_is_none():
    assert frame_id_of(NotFound()) is None


# --- frames the server builds ---


def test_response():
    text = protocol.response("r1", {"a": [1, "é"]})
    assert json.loads(text) == {"type": "response", "id": "r1", "result": {"a": [1, "é"]}}


def test_response_with_null_result_and_null_id():
    assert json.loads(protocol.response(None, None)) == {
        "type": "response",
        "id": None,
        "result": None,
    }


def test_error_response_with_details():
    error = ValidationError(details={"title": ["Too long."]})
    assert json.loads(protocol.error_response("r2", error)) == {
        "type": "response",
        "id": "r2",
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Invalid parameters",
            "details": {"title": ["Too long."]},
        },
    }


def test_error_response_without_details_has_no_details_key():
    assert json.loads(protocol.error_response(None, NotFound("Session not found"))) == {
        "type": "response",
        "id": None,
        "error": {"code": "NOT_FOUND", "message": "Session not found"},
    }


def test_pong_without_id():
    assert json.loads(protocol.pong(None)) == {"type": "pong"}


def test_pong_with_id():
    assert json.loads(protocol.pong('p"1')) == {"type": "pong", "id": 'p"1'}


def test_event_frame_embeds_data_serialized_elsewhere():
    data = {"message": {"id": "msg_1", "text": 'quote " and \\ and ünïcode'}}
    text = protocol.event_frame('session:s"1', "message.created", json.dumps(data), 7)
    assert json.loads(text) == {
        "type": "event",
        "channel": 'session:s"1',
        "event": "message.created",
        "data": data,
        "seq": 7,
    }


def test_delta_frame_without_merge():
    header = {"id": "part_1", "type": "text", "status": "streaming"}
    text = protocol.delta_frame("session:s", json.dumps(header), 'a "b"\n', 5, 5)
    assert json.loads(text) == {
        "type": "event",
        "channel": "session:s",
        "event": "part.updated",
        "data": {"part": header, "delta": 'a "b"\n'},
        "seq": 5,
    }


def test_delta_frame_merged_from_an_earlier_seq():
    header = {"id": "part_1", "type": "text"}
    text = protocol.delta_frame("session:s", json.dumps(header), "abc", 9, 6)
    assert json.loads(text) == {
        "type": "event",
        "channel": "session:s",
        "event": "part.updated",
        "data": {"part": header, "delta": "abc"},
        "seq": 9,
        "mergedFrom": 6,
    }


def test_connection_event():
    text = protocol.connection_event("subscription.rejected", {"channel": "x:y"})
    assert json.loads(text) == {
        "type": "event",
        "channel": "connection",
        "event": "subscription.rejected",
        "data": {"channel": "x:y"},
        "seq": 0,
    }


@pytest.mark.parametrize("request_id", ["r1", None, 'q"\u00e9'])
def test_a_response_embeds_encoded_json_exactly_as_it_would_encode_the_value(request_id):
    value = {"id": "sess_1", "title": 'a "quoted" \u4e2d', "messages": [{"n": 1.5}]}
    embedded = protocol.response(request_id, JSONText(dumps(value)))
    assert embedded == protocol.response(request_id, value)
    assert json.loads(embedded) == {"type": "response", "id": request_id, "result": value}
