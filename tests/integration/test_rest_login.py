"""The console's sign-in cookie: POST /api/login and /api/logout, and where the cookie is
accepted (REST with the CSRF header, /ws from this server's own Origin), over real sockets."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any

import pytest
import tornado.httpclient
import tornado.websocket

from botical.testing.wsclient import WsClient

CSRF = {"X-Botical-CSRF": "1"}


async def _fetch(app: Any, method: str, path: str, body: Any = None, **headers: str):
    request = tornado.httpclient.HTTPRequest(
        f"http://127.0.0.1:{app.port}{path}",
        method=method,
        headers={"Content-Type": "application/json", **headers},
        body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
        allow_nonstandard_methods=True,
    )
    client = tornado.httpclient.AsyncHTTPClient()
    response = await client.fetch(request, raise_error=False)
    parsed = json.loads(response.body) if response.body else None
    return response, parsed


def _cookie_name(app: Any) -> str:
    return f"botical_token_{app.port}"


async def _login(app: Any, token: str) -> tuple[str, SimpleCookie]:
    response, body = await _fetch(app, "POST", "/api/login", {"token": token}, **CSRF)
    assert response.code == 200, body
    jar: SimpleCookie = SimpleCookie(response.headers["Set-Cookie"])
    return jar[_cookie_name(app)].value, jar


def _with(app: Any, cookie: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{_cookie_name(app)}={cookie}", **headers}


@pytest.mark.gen_test
async def test_login_sets_an_httponly_strict_cookie_that_signs_rest_in(botical_app, make_user):
    alice = await make_user("alice")
    cookie, jar = await _login(botical_app, alice.token)
    morsel = jar[_cookie_name(botical_app)]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert 0 < int(morsel["max-age"]) <= botical_app.settings.auth.token_ttl
    assert cookie != alice.token  # a token of its own, revoked on logout
    response, me = await _fetch(botical_app, "GET", "/api/me", **_with(botical_app, cookie))
    assert (response.code, me["user"]["name"]) == (200, "alice")


@pytest.mark.gen_test
async def test_login_needs_the_csrf_header_and_a_valid_unscoped_credential(botical_app, make_user):
    alice = await make_user("alice")
    response, body = await _fetch(botical_app, "POST", "/api/login", {"token": alice.token})
    assert (response.code, body["error"]["code"]) == (403, "FORBIDDEN")
    response, body = await _fetch(botical_app, "POST", "/api/login", {"token": "nope"}, **CSRF)
    assert (response.code, body["error"]["code"]) == (401, "UNAUTHORIZED")
    project = (await alice.api.post("/api/projects", {"name": "P"})).body
    key = (await botical_app.apikeys.create(alice.id, project["id"], "scoped"))[1]
    response, body = await _fetch(botical_app, "POST", "/api/login", {"token": key}, **CSRF)
    assert (response.code, body["error"]["code"]) == (403, "FORBIDDEN")


@pytest.mark.gen_test
async def test_unsafe_cookie_requests_need_the_header_and_this_origin(botical_app, make_user):
    alice = await make_user("alice")
    cookie, _ = await _login(botical_app, alice.token)
    own = f"http://127.0.0.1:{botical_app.port}"
    create = ("POST", "/api/projects", {"name": "By cookie"})
    response, body = await _fetch(botical_app, *create, **_with(botical_app, cookie))
    assert (response.code, body["error"]["code"]) == (403, "FORBIDDEN")
    foreign = _with(botical_app, cookie, Origin="http://127.0.0.1:1", **CSRF)
    response, body = await _fetch(botical_app, *create, **foreign)
    assert (response.code, body["error"]["code"]) == (403, "FORBIDDEN")
    response, body = await _fetch(
        botical_app, *create, **_with(botical_app, cookie, Origin=own, **CSRF)
    )
    assert (response.code, body["name"]) == (201, "By cookie")


@pytest.mark.gen_test
async def test_bearer_tokens_work_as_before_and_win_over_a_cookie(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    cookie, _ = await _login(botical_app, alice.token)
    headers = _with(botical_app, cookie, Authorization=f"Bearer {bob.token}")
    response, me = await _fetch(botical_app, "POST", "/api/projects", {"name": "B"}, **headers)
    assert (response.code, me["ownerId"]) == (201, bob.id)  # no CSRF header needed for Bearer


@pytest.mark.gen_test
async def test_the_websocket_takes_the_cookie_from_its_own_origin_only(botical_app, make_user):
    alice = await make_user("alice")
    cookie, _ = await _login(botical_app, alice.token)
    url = f"ws://127.0.0.1:{botical_app.port}/ws"
    own = _with(botical_app, cookie, Origin=f"http://127.0.0.1:{botical_app.port}")
    ws = await WsClient.connect(url, headers=own, subprotocols=["botical.v1"])
    assert ws.ready["userId"] == alice.id
    ws.close()
    for headers in (_with(botical_app, cookie), _with(botical_app, cookie, Origin="http://x:1")):
        request = tornado.httpclient.HTTPRequest(url, headers=headers)
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(request)
        assert refused.value.code == 403


@pytest.mark.gen_test
async def test_logout_revokes_the_cookie_token_and_clears_it(botical_app, make_user):
    alice = await make_user("alice")
    cookie, _ = await _login(botical_app, alice.token)
    headers = _with(botical_app, cookie)
    response, _ = await _fetch(botical_app, "POST", "/api/logout", **headers)
    assert response.code == 403  # the CSRF header is needed here too
    response, _ = await _fetch(botical_app, "POST", "/api/logout", **headers, **CSRF)
    assert response.code == 204
    cleared = SimpleCookie(response.headers["Set-Cookie"])[_cookie_name(botical_app)]
    assert cleared.value == ""
    response, body = await _fetch(botical_app, "GET", "/api/me", **headers)
    assert (response.code, body["error"]["code"]) == (401, "UNAUTHORIZED")
    response, _ = await _fetch(botical_app, "GET", "/api/me", Authorization=f"Bearer {alice.token}")
    assert response.code == 200  # the token that was exchanged is untouched
