"""The server addresses BoticalClient takes: what `botical serve` prints, a WebSocket URL, or
host:port; and the one-line, typed errors for anything else or a server that is not there."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from botical.client import (
    BoticalClient,
    ConnectionFailed,
    InvalidURL,
    NotFound,
    Unauthorized,
    server_url,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _me(client: BoticalClient) -> Any:
    async with client:
        return await client.rest("GET", "/api/me")


@pytest.mark.gen_test(timeout=20)
async def test_every_accepted_form_reaches_the_server(botical_app, make_user):
    alice = await make_user("alice")
    port = botical_app.port
    forms = [
        (f"http://127.0.0.1:{port}/?token={alice.token}", None),  # as printed
        (f"http://127.0.0.1:{port}/", alice.token),
        (f"ws://127.0.0.1:{port}", alice.token),
        (f"ws://127.0.0.1:{port}/ws", alice.token),
        (f"127.0.0.1:{port}", alice.token),
    ]
    for url, token in forms:
        me = await _me(BoticalClient(url, token))
        assert me["user"]["name"] == "alice", url


@pytest.mark.parametrize(
    "url", ["", "ftp://host", "http://:4096", "host:99999", "ws://host:port/ws"]
)
def test_an_unusable_url_is_invalid_url_at_once(url):
    with pytest.raises(InvalidURL) as raised:
        BoticalClient(url, "token")
    assert str(raised.value).startswith("INVALID_URL: ")


def test_no_token_anywhere_is_unauthorized():
    with pytest.raises(Unauthorized):
        BoticalClient("http://127.0.0.1:4096/")


def test_the_forms_map_to_ws_and_http():
    printed = server_url("https://example.com/botical/?token=abc")
    assert (printed.ws, printed.http, printed.token) == (
        "wss://example.com/botical/ws",
        "https://example.com/botical",
        "abc",
    )
    assert server_url("localhost").ws == "ws://localhost:4096/ws"
    assert server_url("ws://u:secret@h:1/ws").http == "http://h:1"


@pytest.mark.gen_test(timeout=20)
async def test_nobody_listening_is_connection_failed():
    client = BoticalClient(f"127.0.0.1:{_free_port()}", "token")
    with pytest.raises(ConnectionFailed) as failed:
        await client.connect()
    assert "\n" not in str(failed.value)


@pytest.mark.gen_test(timeout=20)
async def test_a_page_that_is_not_the_socket_is_a_typed_error(botical_app, make_user):
    alice = await make_user("alice")
    client = BoticalClient(f"http://127.0.0.1:{botical_app.port}/not-botical/", alice.token)
    with pytest.raises(NotFound):  # /not-botical/ws: the JSON 404 of an unknown route
        await client.connect()
