"""WebSocket connection lifecycle: authentication before the upgrade, Origin policy, the ready
frame, app-level ping, credentials that lapse while connected, cleanup, shutdown, limits."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import tornado.httpclient
import tornado.websocket

import botical
from botical.ids import new_id
from botical.testing.wsclient import WsClient
from tests.integration.ws_helpers import (
    ConnectionWatcher,
    connect,
    new_project,
    new_session,
    ws_url,
)

ALLOWED_ORIGIN = "https://app.example"
MAX_PER_USER = 3


@pytest.fixture
def botical_overrides():
    return {
        "websocket": {
            "allowed_origins": [ALLOWED_ORIGIN],
            "revalidate_interval": 0.2,
            "max_connections_per_user": MAX_PER_USER,
        }
    }


@pytest.fixture
def watcher():
    return ConnectionWatcher()


class ShutdownCounter:
    def __init__(self) -> None:
        self.calls = 0

    @botical.hookimpl
    def botical_shutdown(self, app):
        self.calls += 1


@pytest.fixture
def shutdowns():
    return ShutdownCounter()


@pytest.fixture
def botical_plugins(watcher, shutdowns):
    return (watcher, shutdowns)


async def _refused(app, url_suffix="", headers=None, subprotocols=None):
    """Try to upgrade; return the HTTP error (status and JSON body) the server answered with."""
    request = tornado.httpclient.HTTPRequest(ws_url(app) + url_suffix, headers=headers or {})
    before = len(app.connections)
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await tornado.websocket.websocket_connect(request, subprotocols=subprotocols)
    response = refused.value.response
    assert response is not None
    assert response.headers["Content-Type"].startswith("application/json")
    assert len(app.connections) == before  # no socket was opened
    return refused.value.code, json.loads(response.body)


def _signed(app, **claims):
    secret = (app.settings.data_path / "secret").read_text().strip()
    return jwt.encode(claims, secret, algorithm="HS256")


# --- authentication ---


@pytest.mark.gen_test
async def test_token_in_the_query_string_connects(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token)
    assert ws.ready["userId"] == alice.id
    assert await ws.request("subscriptions.list") == {"items": []}
    ws.close()


@pytest.mark.gen_test
async def test_token_in_the_authorization_header_connects(botical_app, make_user):
    alice = await make_user("alice")
    ws = await WsClient.connect(
        ws_url(botical_app), headers={"Authorization": f"Bearer {alice.token}"}
    )
    assert ws.ready["userId"] == alice.id
    ws.close()


@pytest.mark.gen_test
async def test_token_in_the_subprotocol_connects_and_server_picks_botical_v1(
    botical_app, make_user
):
    alice = await make_user("alice")
    ws = await WsClient.connect(
        ws_url(botical_app), subprotocols=["botical.v1", f"botical.token.{alice.token}"]
    )
    assert ws.ready["userId"] == alice.id
    assert ws.conn.selected_subprotocol == "botical.v1"
    ws.close()


@pytest.mark.gen_test
async def test_api_key_connects(botical_app, make_user):
    alice = await make_user("alice")
    _, key = await botical_app.apikeys.create(alice.id, name="ci")
    ws = await connect(botical_app, key)
    assert ws.ready["userId"] == alice.id
    ws.close()


@pytest.mark.gen_test
async def test_missing_token_is_401_before_the_upgrade(botical_app):
    code, body = await _refused(botical_app)
    assert (code, body["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_garbage_token_is_401(botical_app):
    code, body = await _refused(botical_app, "?token=not.a.jwt")
    assert (code, body["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_garbage_token_in_the_header_is_401(botical_app):
    code, body = await _refused(botical_app, headers={"Authorization": "Bearer abc.def.ghi"})
    assert (code, body["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_expired_token_is_401(botical_app, make_user):
    alice = await make_user("alice")
    now = int(time.time())
    token = _signed(
        botical_app, sub=alice.id, iat=now - 120, exp=now - 60, jti=new_id("tok"), iss="botical"
    )
    code, body = await _refused(botical_app, f"?token={token}")
    assert (code, body["error"]) == (401, {"code": "UNAUTHORIZED", "message": "Token expired"})


@pytest.mark.gen_test
async def test_token_signed_with_another_secret_is_401(botical_app, make_user):
    alice = await make_user("alice")
    now = int(time.time())
    claims = {"sub": alice.id, "iat": now, "exp": now + 600, "jti": new_id("tok"), "iss": "botical"}
    token = jwt.encode(claims, "x" * 48, algorithm="HS256")
    code, body = await _refused(botical_app, f"?token={token}")
    assert (code, body["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_revoked_token_is_401(botical_app, make_user):
    alice = await make_user("alice")
    await botical_app.tokens.revoke(alice.token)
    code, body = await _refused(botical_app, f"?token={alice.token}")
    assert (code, body["error"]) == (401, {"code": "UNAUTHORIZED", "message": "Token revoked"})


@pytest.mark.gen_test
async def test_revoked_api_key_is_401(botical_app, make_user):
    alice = await make_user("alice")
    view, key = await botical_app.apikeys.create(alice.id, name="ci")
    await botical_app.apikeys.revoke(view["id"])
    code, body = await _refused(botical_app, f"?token={key}")
    assert (code, body["error"]["code"]) == (401, "UNAUTHORIZED")


# --- Origin ---


@pytest.mark.gen_test
async def test_foreign_origin_is_403(botical_app, make_user):
    alice = await make_user("alice")
    code, body = await _refused(
        botical_app, f"?token={alice.token}", headers={"Origin": "https://evil.example"}
    )
    assert (code, body["error"]["code"]) == (403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_same_origin_is_allowed(botical_app, make_user):
    alice = await make_user("alice")
    origin = f"http://127.0.0.1:{botical_app.port}"
    ws = await connect(botical_app, alice.token, headers={"Origin": origin})
    assert ws.ready["userId"] == alice.id
    ws.close()


@pytest.mark.gen_test
async def test_listed_origin_is_allowed(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token, headers={"Origin": ALLOWED_ORIGIN})
    assert ws.ready["userId"] == alice.id
    ws.close()


# --- the open connection ---


@pytest.mark.gen_test
async def test_first_frame_is_connection_ready(botical_app, make_user):
    alice = await make_user("alice")
    request = tornado.httpclient.HTTPRequest(f"{ws_url(botical_app)}?token={alice.token}")
    conn = await tornado.websocket.websocket_connect(request)
    first = json.loads(await conn.read_message())
    assert (first["type"], first["channel"], first["event"]) == (
        "event",
        "connection",
        "connection.ready",
    )
    data = first["data"]
    assert data["connectionId"].startswith("conn_")
    assert botical_app.connections.get(data["connectionId"]) is not None
    assert (data["userId"], data["protocol"], data["epoch"]) == (
        alice.id,
        1,
        botical_app.broadcaster.epoch,
    )
    assert data["heartbeatMs"] == int(botical_app.settings.websocket.ping_interval * 1000)
    assert data["limits"]["maxMessageSize"] == botical_app.settings.websocket.max_message_size
    assert data["limits"]["maxChannels"] == botical_app.settings.websocket.max_channels
    conn.close()


@pytest.mark.gen_test
async def test_app_level_ping_gets_a_pong_with_the_same_id(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token)
    ws.send_raw({"type": "ping", "id": "p-42"})
    pong = await ws.next_frame(lambda f: f["type"] == "pong")
    assert pong == {"type": "pong", "id": "p-42"}
    ws.send_raw({"type": "ping"})
    assert await ws.next_frame(lambda f: f["type"] == "pong") == {"type": "pong"}
    ws.close()


@pytest.mark.gen_test
async def test_token_that_expires_while_connected_is_closed_with_4001(botical_app, make_user):
    alice = await make_user("alice")
    short = botical_app.tokens.issue(alice.id, 2)  # whole seconds: 2 leaves at least 1 to connect
    ws = await connect(botical_app, short.token)
    assert await ws.closed(timeout=10) == 4001
    assert ws.conn.close_reason == "Token expired"


@pytest.mark.gen_test
async def test_token_revoked_while_connected_is_closed_with_4001(botical_app, make_user):
    alice = await make_user("alice")
    other = botical_app.tokens.issue(alice.id)
    ws = await connect(botical_app, alice.token)
    bystander = await connect(botical_app, other.token)
    await botical_app.tokens.revoke(alice.token)
    assert await ws.closed(timeout=10) == 4001
    # another token of the same user is untouched
    assert await bystander.request("subscriptions.list") == {"items": []}
    bystander.close()


@pytest.mark.gen_test
async def test_api_key_revoked_while_connected_is_closed_with_4001(botical_app, make_user):
    alice = await make_user("alice")
    view, key = await botical_app.apikeys.create(alice.id, name="ci")
    ws = await connect(botical_app, key)
    await botical_app.apikeys.revoke(view["id"])
    assert await ws.closed(timeout=10) == 4001


@pytest.mark.gen_test
async def test_disconnect_cleans_up_every_registry(botical_app, make_user, watcher):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    channels = [f"session:{session_id}", f"project:{project_id}", f"user:{alice.id}"]
    assert [s["channel"] for s in (await ws.subscribe(*channels))["subscribed"]] == channels
    connection_id = ws.ready["connectionId"]
    connection = botical_app.connections.get(connection_id)
    assert botical_app.connections.count_for_user(alice.id) == 1
    assert all(botical_app.connections.subscribers(c) == (connection,) for c in channels)

    ws.close()
    await watcher.wait_closed(connection_id)

    registry = botical_app.connections
    assert registry.get(connection_id) is None
    assert len(registry) == 0
    assert registry.count_for_user(alice.id) == 0
    assert registry.channels() == []
    assert all(registry.subscribers(c) == () for c in channels)
    assert connection.closed and not connection.inflight and connection.queued == (0, 0)


@pytest.mark.gen_test
async def test_graceful_shutdown_tells_clients_then_closes_with_1001(
    botical_app, make_user, shutdowns
):
    alice = await make_user("alice")
    first = await connect(botical_app, alice.token)
    second = await connect(botical_app, alice.token)
    await botical_app.stop()
    for ws in (first, second):
        notice = await ws.next_event("connection.closing")
        assert notice["data"] == {"reason": "shutdown", "reconnect": True}
        assert await ws.closed() == 1001
    assert len(botical_app.connections) == 0
    await botical_app.stop()  # the fixture stops it again too: a second stop does nothing
    assert shutdowns.calls == 1


@pytest.mark.gen_test
async def test_too_many_connections_for_one_user_is_429(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    open_ = [await connect(botical_app, alice.token) for _ in range(MAX_PER_USER)]
    code, body = await _refused(botical_app, f"?token={alice.token}")
    assert (code, body["error"]["code"]) == (429, "RATE_LIMITED")
    other = await connect(botical_app, bob.token)  # the limit is per user
    assert other.ready["userId"] == bob.id
    for ws in [*open_, other]:
        ws.close()
