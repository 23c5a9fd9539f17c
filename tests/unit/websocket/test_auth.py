"""Upgrade credentials, the Origin policy and channel authorization."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from botical.errors import Forbidden, NotFound, ValidationError
from botical.websocket.auth import origin_allowed, request_credential
from botical.websocket.broadcaster import ChannelKind
from botical.websocket.channels import BUILTIN_CHANNELS
from botical.websocket.subscriptions import authorize_channel
from tests.unit.websocket.fakes import identity

HOST = "127.0.0.1:4096"


def _request(uri: str = "/ws", **headers: str) -> HTTPServerRequest:
    names = {"authorization": "Authorization", "protocol": "Sec-WebSocket-Protocol"}
    return HTTPServerRequest(
        start_line=RequestStartLine("GET", uri, "HTTP/1.1"),
        headers=HTTPHeaders({"Host": HOST, **{names[k]: v for k, v in headers.items()}}),
    )


# --- request_credential ---


def test_credential_from_the_query():
    assert request_credential(_request("/ws?token=abc.def-ghi_1")) == "abc.def-ghi_1"


def test_credential_from_the_authorization_header():
    assert request_credential(_request(authorization="Bearer tok123")) == "tok123"
    assert request_credential(_request(authorization="bearer   tok123  ")) == "tok123"


def test_credential_from_the_subprotocol_list():
    request = _request(protocol="botical.v1, botical.token.eyJ.abc.def")
    assert request_credential(request) == "eyJ.abc.def"


def test_credential_from_a_subprotocol_listed_first():
    assert request_credential(_request(protocol="botical.token.t1,botical.v1")) == "t1"


@pytest.mark.parametrize(
    "request_",
    [
        _request(),
        _request("/ws?other=1"),
        _request(authorization="Basic dXNlcjpwYXNz"),
        _request(authorization="Bearer "),
        _request(protocol="botical.v1"),
        _request(protocol="botical.v1, other.token.x"),
    ],
)
def test_no_credential(request_):
    assert request_credential(request_) is None


def test_the_query_takes_precedence():
    request = _request("/ws?token=fromquery", authorization="Bearer fromheader")
    assert request_credential(request) == "fromquery"


# --- origin_allowed ---


@pytest.mark.parametrize("origin", [None, ""])
def test_no_origin_is_allowed(origin):
    assert origin_allowed(origin, HOST, ())


@pytest.mark.parametrize("origin", ["http://127.0.0.1:4096", "http://127.0.0.1:4096/"])
def test_same_origin_is_allowed(origin):
    assert origin_allowed(origin, HOST, ())


def test_same_origin_ignores_case():
    assert origin_allowed("http://LocalHost:4096", "localhost:4096", ())


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://app.example.com/"])
def test_a_listed_origin_is_allowed(origin):
    assert origin_allowed(origin, HOST, ("https://app.example.com",))


def test_a_wildcard_allows_any_origin():
    assert origin_allowed("https://anything.example", HOST, ("*",))


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1:4096.evil.example",
        "https://app.example.com.evil.example",
        "http://evil.example/127.0.0.1:4096",
        "null",
    ],
)
def test_another_origin_is_refused(origin):
    assert not origin_allowed(origin, HOST, ("https://app.example.com",))


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9999", "http://127.0.0.1"])
def test_a_port_mismatch_is_refused(origin):
    assert not origin_allowed(origin, HOST, ())


def test_no_host_refuses_an_unlisted_origin():
    assert not origin_allowed("http://127.0.0.1:4096", None, ())
    assert not origin_allowed("http://127.0.0.1:4096", "", ())


# --- authorize_channel ---


async def _allow(app, who, ident):
    return None


async def _missing(app, who, ident):
    raise NotFound("Session not found")


async def _refuse(app, who, ident):
    raise Forbidden("No")


def _kind(prefix, authorize):
    return ChannelKind(prefix, lambda event: (), authorize)


KINDS = {
    "open": _kind("open", _allow),
    "missing": _kind("missing", _missing),
    "closed": _kind("closed", _refuse),
    **{kind.prefix: kind for kind in BUILTIN_CHANNELS},
}


@pytest.mark.gen_test
async def test_an_allowed_channel_passes():
    assert await authorize_channel(None, identity(), KINDS, "open:anything") is None


@pytest.mark.gen_test
async def test_an_unknown_kind_is_a_validation_error():
    with pytest.raises(ValidationError) as caught:
        await authorize_channel(None, identity(), KINDS, "room:1")
    assert "channel" in caught.value.details


@pytest.mark.gen_test
@pytest.mark.parametrize("channel", ["", "session", "session:", ":sess_1", ":"])
async def test_a_malformed_channel_is_a_validation_error(channel):
    with pytest.raises(ValidationError) as caught:
        await authorize_channel(None, identity(), KINDS, channel)
    assert "channel" in caught.value.details


@pytest.mark.gen_test
async def test_not_found_becomes_forbidden():
    with pytest.raises(Forbidden) as caught:
        await authorize_channel(None, identity(), KINDS, "missing:sess_1")
    assert caught.value.code == "FORBIDDEN"
    assert "not found" not in caught.value.message.lower()


@pytest.mark.gen_test
async def test_forbidden_stays_forbidden():
    with pytest.raises(Forbidden):
        await authorize_channel(None, identity(), KINDS, "closed:x")


@pytest.mark.gen_test
async def test_the_builtin_user_channel_is_only_your_own():
    me = identity("usr_me")
    assert await authorize_channel(None, me, KINDS, "user:usr_me") is None
    with pytest.raises(Forbidden):
        await authorize_channel(None, me, KINDS, "user:usr_other")


def _sync_refuse(app, who, ident):
    raise Forbidden("No")


@pytest.mark.gen_test
async def test_a_plugin_kind_may_authorize_synchronously():
    kinds = {
        "plain": _kind("plain", lambda app, who, ident: None),
        "strict": _kind("strict", _sync_refuse),
    }
    assert await authorize_channel(None, identity(), kinds, "plain:1") is None
    with pytest.raises(Forbidden):
        await authorize_channel(None, identity(), kinds, "strict:1")
