"""WebSocket requests: round trips, every error code, concurrency, limits, authorization per
method, and `system.describe`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from marshmallow import Schema

import botical
from botical.methods import method
from botical.testing.wsclient import WsError
from tests.integration.ws_helpers import (
    add_member,
    connect,
    new_project,
    new_session,
    send,
)

SECRET = "secret-internal-detail"
DESIGNED_METHODS = {
    "sessions.create": "member",
    "sessions.list": "viewer",
    "sessions.get": "viewer",
    "sessions.update": "member",
    "sessions.archive": "member",
    "sessions.sync": "viewer",
    "messages.list": "viewer",
    "messages.send": "member",
    "messages.cancel": "member",
    "messages.retry": "member",
    "agents.list": "viewer",
    "agents.get": "viewer",
    "tools.list": "viewer",
    "tools.approve": "member",
    "tools.reject": "member",
    "tools.pending": "viewer",
    "subscriptions.list": None,
    "system.describe": None,
}


class NoParams(Schema):
    pass


class SlowAndFailingMethods:
    """A plugin with a method that fails unexpectedly and one that waits to be released."""

    def __init__(self) -> None:
        self._release: asyncio.Event | None = None
        self.waiting = 0

    @property
    def release(self) -> asyncio.Event:
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    @botical.hookimpl
    def botical_register_methods(self, register: Any) -> None:
        @method("test.fail", NoParams, role=None, scope=None)
        async def fail(ctx, p):
            """Fail the way a bug would."""
            raise RuntimeError(SECRET)

        @method("test.wait", NoParams, role=None, scope=None)
        async def wait(ctx, p):
            """Wait until the test releases it."""
            self.waiting += 1
            await self.release.wait()
            return {"released": True}

        register(fail)
        register(wait)


@pytest.fixture
def test_methods():
    return SlowAndFailingMethods()


@pytest.fixture
def botical_plugins(test_methods):
    return (test_methods,)


def _limits(**websocket: Any):
    """Direct parametrization of `botical_overrides` for one test."""
    return pytest.mark.parametrize("botical_overrides", [{"websocket": websocket}])


async def _alice(botical_app, make_user):
    alice = await make_user("alice")
    return alice, await connect(botical_app, alice.token)


def _wait_frame(frame_id: str) -> dict[str, Any]:
    return {"type": "request", "id": frame_id, "method": "test.wait", "params": {}}


async def _response(ws, frame_id: str) -> dict[str, Any]:
    """The response to a frame sent with `send_raw`."""
    return await ws.next_frame(lambda f: f["type"] == "response" and f["id"] == frame_id)


async def _error_response(ws) -> dict[str, Any]:
    """The next response the client did not ask for by id (id null or unexpected)."""
    return await ws.next_frame(lambda f: f["type"] == "response")


# --- round trip and errors ---


@pytest.mark.gen_test
async def test_request_response_round_trip_carries_the_id(botical_app, make_user):
    alice, ws = await _alice(botical_app, make_user)
    project_id = await new_project(alice)
    frame = await ws.call(
        {
            "type": "request",
            "id": "req_1",
            "method": "sessions.create",
            "params": {"projectId": project_id, "title": "New Chat"},
        }
    )
    assert (frame["type"], frame["id"]) == ("response", "req_1")
    assert "error" not in frame
    session = frame["result"]
    assert (session["projectId"], session["title"]) == (project_id, "New Chat")
    assert session["id"].startswith("sess_")
    got = await ws.request("sessions.get", sessionId=session["id"])
    assert got["id"] == session["id"]
    ws.close()


@pytest.mark.gen_test
async def test_invalid_json_is_a_parse_error_and_the_connection_stays_open(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    ws.send_raw('{"type": "request", "id": "r1", ')
    error = await _error_response(ws)
    assert error["id"] is None
    assert error["error"]["code"] == "PARSE_ERROR"
    assert await ws.request("subscriptions.list") == {"items": []}
    ws.close()


@pytest.mark.parametrize(
    ("frame", "frame_id", "bad_field"),
    [
        ([1, 2, 3], None, None),
        ("just a string", None, None),
        ({"id": "f1", "method": "system.describe"}, "f1", None),
        ({"type": "bogus", "id": "f2"}, "f2", None),
        ({"type": ["request"], "id": "f3"}, "f3", None),
        ({"type": "request", "id": "f4", "params": {}}, "f4", "method"),
        ({"type": "request", "id": "f5", "method": "system.describe", "extra": 1}, "f5", "extra"),
        ({"type": "request", "id": 7, "method": "system.describe"}, None, "id"),
        ({"type": "subscribe", "id": "f6"}, "f6", "channels"),
        ({"type": "subscribe", "id": "f7", "channels": []}, "f7", "channels"),
        ({"type": "ping", "id": "f8", "payload": "x"}, "f8", "payload"),
    ],
)
@pytest.mark.gen_test
async def test_valid_json_that_is_not_a_valid_frame_is_invalid_frame(
    botical_app, make_user, frame, frame_id, bad_field
):
    _, ws = await _alice(botical_app, make_user)
    ws.send_raw(json.dumps(frame))
    error = await _error_response(ws)
    assert error["id"] == frame_id
    assert error["error"]["code"] == "INVALID_FRAME"
    if bad_field:
        assert bad_field in error["error"]["details"]
    assert await ws.request("subscriptions.list") == {"items": []}
    ws.close()


@pytest.mark.gen_test
async def test_binary_frame_is_invalid_frame(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    ws.conn.write_message(b'{"type":"ping"}', binary=True)
    error = await _error_response(ws)
    assert (error["id"], error["error"]["code"]) == (None, "INVALID_FRAME")
    assert await ws.request("subscriptions.list") == {"items": []}
    ws.close()


@pytest.mark.gen_test
async def test_bad_params_are_a_validation_error_by_field(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    frame = await ws.call(
        {
            "type": "request",
            "method": "sessions.create",
            "params": {"title": 5, "bogus": True},
        }
    )
    error = frame["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert set(error["details"]) == {"projectId", "title", "bogus"}
    assert all(isinstance(m, list) and m for m in error["details"].values())
    with pytest.raises(WsError) as limit:
        await ws.request("sessions.list", projectId="prj_x", limit=100_000)
    assert (limit.value.code, list(limit.value.details)) == ("VALIDATION_ERROR", ["limit"])
    ws.close()


@pytest.mark.gen_test
async def test_malformed_id_is_a_validation_error(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    with pytest.raises(WsError) as bad:
        await ws.request("sessions.get", sessionId="../../etc/passwd")
    assert bad.value.code == "VALIDATION_ERROR"
    assert "sessionId" in bad.value.details
    ws.close()


@pytest.mark.gen_test
async def test_unknown_method_is_method_not_found(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    frame = await ws.call({"type": "request", "id": "m1", "method": "sessions.explode"})
    assert (frame["id"], frame["error"]["code"]) == ("m1", "METHOD_NOT_FOUND")
    ws.close()


@pytest.mark.gen_test
async def test_internal_failure_is_internal_error_without_details(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    frame = await ws.call({"type": "request", "id": "boom", "method": "test.fail", "params": {}})
    assert frame == {
        "type": "response",
        "id": "boom",
        "error": {"code": "INTERNAL_ERROR", "message": "Internal error"},
    }
    text = json.dumps(frame)
    assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
    assert await ws.request("subscriptions.list") == {"items": []}  # still open
    ws.close()


@pytest.mark.gen_test
async def test_a_slow_request_blocks_neither_pings_nor_other_requests(
    botical_app, make_user, test_methods
):
    alice, ws = await _alice(botical_app, make_user)
    project_id = await new_project(alice)
    ws.send_raw(_wait_frame("slow"))  # on the wire before the ping and the list
    ws.send_raw({"type": "ping", "id": "p1"})
    assert await ws.next_frame(lambda f: f["type"] == "pong") == {"type": "pong", "id": "p1"}
    listed = await ws.request("sessions.list", projectId=project_id)
    assert listed["items"] == []
    assert test_methods.waiting == 1
    assert not [f for f in ws.frames if f["type"] == "response"]  # still waiting
    test_methods.release.set()
    assert (await _response(ws, "slow"))["result"] == {"released": True}
    ws.close()


# --- limits ---


@_limits(rate_limit=0.1, rate_burst=3)
@pytest.mark.gen_test
async def test_requests_beyond_the_rate_limit_are_rate_limited(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    frames = await asyncio.gather(
        *(ws.call({"type": "request", "method": "subscriptions.list"}) for _ in range(5))
    )
    outcomes = [f.get("error", {}).get("code", "ok") for f in frames]
    assert outcomes == ["ok", "ok", "ok", "RATE_LIMITED", "RATE_LIMITED"]
    ws.send_raw({"type": "ping", "id": "still"})  # pings are not requests
    assert await ws.next_frame(lambda f: f["type"] == "pong") == {"type": "pong", "id": "still"}
    ws.close()


@_limits(max_inflight=2)
@pytest.mark.gen_test
async def test_requests_beyond_max_inflight_are_rate_limited(botical_app, make_user, test_methods):
    _, ws = await _alice(botical_app, make_user)
    ws.send_raw(_wait_frame("w1"))
    ws.send_raw(_wait_frame("w2"))
    with pytest.raises(WsError) as refused:
        await ws.request("subscriptions.list")
    assert refused.value.code == "RATE_LIMITED"
    assert test_methods.waiting == 2
    test_methods.release.set()
    for frame_id in ("w1", "w2"):
        assert (await _response(ws, frame_id))["result"] == {"released": True}
    assert await ws.request("subscriptions.list") == {"items": []}
    ws.close()


@_limits(rate_limit=0.1, rate_burst=1, abuse_limit=1)
@pytest.mark.gen_test
async def test_rate_limit_abuse_closes_with_4029(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    for n in range(3):
        ws.send_raw({"type": "request", "id": f"a{n}", "method": "subscriptions.list"})
    assert await ws.closed() == 4029


@_limits(max_inflight=1, abuse_limit=2)
@pytest.mark.gen_test
async def test_refusals_count_over_the_connections_life_not_in_a_row(
    botical_app, make_user, test_methods
):
    _, ws = await _alice(botical_app, make_user)
    for round_ in (1, 2):  # a refusal, then accepted frames: the count goes on
        ws.send_raw(_wait_frame(f"w{round_}"))
        with pytest.raises(WsError) as refused:
            await ws.request("subscriptions.list")
        assert refused.value.code == "RATE_LIMITED"
        test_methods.release.set()
        assert (await _response(ws, f"w{round_}"))["result"] == {"released": True}
        test_methods._release = None  # the next test.wait blocks again
    ws.send_raw(_wait_frame("w3"))
    ws.send_raw({"type": "request", "id": "third", "method": "subscriptions.list"})
    assert await ws.closed() == 4029


@pytest.mark.gen_test
async def test_frame_larger_than_max_message_size_closes_with_1009(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    limit = ws.ready["limits"]["maxMessageSize"]
    ws.send_raw(json.dumps({"type": "ping", "id": "x" * limit}))
    assert await ws.closed() == 1009


@pytest.mark.gen_test
async def test_frame_just_under_max_message_size_is_answered(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    limit = ws.ready["limits"]["maxMessageSize"]
    padding = "x" * (limit - 100)
    ws.send_raw(json.dumps({"type": "request", "id": "big", "method": padding}))
    error = await _error_response(ws)
    assert (error["id"], error["error"]["code"]) == ("big", "INVALID_FRAME")
    ws.close()


# --- authorization per method ---


@pytest.mark.gen_test
async def test_viewer_may_read_but_not_write(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await new_project(alice)
    await add_member(alice, project_id, bob, "viewer")
    owner = await connect(botical_app, alice.token)
    session_id = await new_session(owner, project_id)
    await owner.subscribe(f"user:{alice.id}")
    await send(owner, session_id, '/tool write {"path": "a.txt", "content": "x"}')
    required = await owner.next_event("tool.approval_required")
    approval_id = required["data"]["approval"]["id"]

    viewer = await connect(botical_app, bob.token)
    assert (await viewer.request("sessions.get", sessionId=session_id))["id"] == session_id
    listed = await viewer.request("messages.list", sessionId=session_id)
    assert [m["role"] for m in listed["items"]][:1] == ["user"]
    pending = await viewer.request("tools.pending", sessionId=session_id)
    assert [a["id"] for a in pending["items"]] == [approval_id]
    refused = [
        ("messages.send", {"sessionId": session_id, "content": "hi"}),
        ("sessions.create", {"projectId": project_id}),
        ("tools.approve", {"approvalId": approval_id}),
        ("tools.reject", {"approvalId": approval_id}),
        ("messages.cancel", {"sessionId": session_id}),
    ]
    for name, params in refused:
        with pytest.raises(WsError) as denied:
            await viewer.request(name, **params)
        assert denied.value.code == "FORBIDDEN", name
    still = await owner.request("tools.pending", sessionId=session_id)
    assert [(a["id"], a["status"]) for a in still["items"]] == [(approval_id, "pending")]
    owner.close()
    viewer.close()


@pytest.mark.gen_test
async def test_non_member_gets_not_found_for_another_projects_sessions(botical_app, make_user):
    alice = await make_user("alice")
    carol = await make_user("carol")
    project_id = await new_project(alice)
    owner = await connect(botical_app, alice.token)
    session_id = await new_session(owner, project_id)
    stranger = await connect(botical_app, carol.token)
    calls = [
        ("sessions.get", {"sessionId": session_id}),
        ("sessions.list", {"projectId": project_id}),
        ("sessions.sync", {"sessionId": session_id}),
        ("messages.list", {"sessionId": session_id}),
        ("messages.send", {"sessionId": session_id, "content": "hi"}),
        ("tools.pending", {"sessionId": session_id}),
        ("sessions.create", {"projectId": project_id}),
    ]
    for name, params in calls:
        with pytest.raises(WsError) as hidden:
            await stranger.request(name, **params)
        assert hidden.value.code == "NOT_FOUND", name
    assert (await owner.request("messages.list", sessionId=session_id))["items"] == []
    owner.close()
    stranger.close()


# --- system.describe ---


@pytest.mark.gen_test
async def test_system_describe_lists_every_method_and_channel(botical_app, make_user):
    _, ws = await _alice(botical_app, make_user)
    described = await ws.request("system.describe")
    assert described["protocol"] == 1
    methods = {m["name"]: m for m in described["methods"]}
    assert set(methods) == {reg.name for reg in botical_app.registries["methods"]}
    assert {"test.fail", "test.wait"} <= set(methods)  # plugins' methods too
    for name, role in DESIGNED_METHODS.items():
        assert name in methods, name
        assert methods[name]["role"] == role, name
    for entry in methods.values():
        assert entry["params"]["type"] == "object"
        assert entry["params"]["additionalProperties"] is False
        assert entry["description"], entry["name"]
    for name in DESIGNED_METHODS:
        assert methods[name]["result"]["type"] == "object", name
    create = methods["sessions.create"]["params"]
    assert create["required"] == ["projectId"]
    assert {"projectId", "title", "agent", "parentId", "model"} <= set(create["properties"])
    send_params = methods["messages.send"]["params"]
    assert send_params["properties"]["content"]["type"] == "string"
    assert set(methods["sessions.sync"]["result"]["properties"]) >= {
        "session",
        "messages",
        "todos",
        "pendingApprovals",
        "status",
        "seq",
    }
    channels = {c["pattern"]: c for c in described["channels"]}
    assert set(channels) == {"session:{id}", "project:{id}", "user:{id}"}
    assert "part.updated" in channels["session:{id}"]["events"]
    assert "tool.approval_required" in channels["user:{id}"]["events"]
    assert "agent.status_changed" in channels["project:{id}"]["events"]
    ws.close()
