"""Frames that break RFC 6455, sent byte by byte on a raw socket: each is answered with a close
frame carrying its code (1002 protocol error, 1007 invalid UTF-8, 1011 our own failure), then
the server closes the TCP connection, and it keeps serving everyone else."""

from __future__ import annotations

import struct
from typing import Any

import pytest

import botical
from botical.websocket.server import SocketHandler
from tests.integration.ws_helpers import RawWebSocket, connect

FIN = 0x80
TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9


class BrokenSocket(SocketHandler):
    """A socket whose message callback raises: what the server does when its own code fails."""

    def on_message(self, message: str | bytes) -> None:
        raise RuntimeError("a bug")


class BrokenRoute:
    @botical.hookimpl
    def botical_register_routes(self, register: Any) -> None:
        register(r"/ws-broken", BrokenSocket)


@pytest.fixture
def botical_plugins():
    return (BrokenRoute(),)


async def opened(app, make_user, path: str = "/ws") -> RawWebSocket:
    """A raw socket past the upgrade and the connection.ready frame."""
    person = await make_user("raw")
    raw = await RawWebSocket.open(app.port, person.token, path=path)
    assert (await raw.read_json())["event"] == "connection.ready"
    return raw


async def failed_with(raw: RawWebSocket) -> int:
    code = await raw.close_code()
    assert await raw.eof()  # the server closed TCP after its close frame
    raw.close()
    return code


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack(">H", code) + reason


CASES = {
    "invalid-utf8": (1007, [(FIN | TEXT, b'{"type":"ping","x":"\xff\xfe"}')]),
    "utf8-cut-in-a-fragment-and-never-completed": (
        1007,
        [(TEXT, b'{"type":"ping","x":"\xc3'), (FIN | 0x0, b'"}')],
    ),
    "reserved-opcode-3": (1002, [(FIN | 0x3, b"x")]),
    "reserved-control-opcode-b": (1002, [(FIN | 0xB, b"")]),
    "rsv1-without-deflate": (1002, [(FIN | 0x40 | TEXT, b'{"type":"ping"}')]),
    "rsv3": (1002, [(FIN | 0x10 | TEXT, b'{"type":"ping"}')]),
    "fragmented-ping": (1002, [(PING, b"p")]),
    "long-ping": (1002, [(FIN | PING, b"p" * 126)]),
    "continuation-of-nothing": (1002, [(FIN | 0x0, b"x")]),
    "new-message-inside-a-fragmented-one": (1002, [(TEXT, b"{"), (FIN | TEXT, b"}")]),
    "close-with-one-byte": (1002, [(FIN | CLOSE, b"\x03")]),
    "close-with-reserved-code-1005": (1002, [(FIN | CLOSE, close_payload(1005))]),
    "close-with-code-999": (1002, [(FIN | CLOSE, close_payload(999))]),
    "close-reason-not-utf8": (1007, [(FIN | CLOSE, close_payload(1000, b"\xff"))]),
}


@pytest.mark.parametrize("frames", CASES.values(), ids=CASES.keys())
@pytest.mark.gen_test
async def test_a_broken_frame_gets_its_close_code(botical_app, make_user, frames):
    expected, sent = frames
    raw = await opened(botical_app, make_user)
    for first, payload in sent:
        await raw.send_frame(first, payload)
    assert await failed_with(raw) == expected


@pytest.mark.gen_test
async def test_an_unmasked_client_frame_is_a_protocol_error(botical_app, make_user):
    raw = await opened(botical_app, make_user)
    await raw.send_frame(FIN | TEXT, b'{"type":"ping","id":"p"}', masked=False)
    assert await failed_with(raw) == 1002


@pytest.mark.gen_test
async def test_utf8_split_across_fragments_is_one_valid_message(botical_app, make_user):
    raw = await opened(botical_app, make_user)
    await raw.send_frame(TEXT, b'{"type":"ping","id":"\xc3')
    await raw.send_frame(FIN | 0x0, b'\xa9"}')
    assert await raw.read_json() == {"type": "pong", "id": "\u00e9"}
    await raw.send_frame(FIN | CLOSE, close_payload(1000, b"bye"))
    assert await failed_with(raw) == 1000  # a clean close is echoed


@pytest.mark.gen_test
async def test_a_callback_that_raises_closes_with_1011(botical_app, make_user):
    raw = await opened(botical_app, make_user, path="/ws-broken")
    await raw.send_frame(FIN | TEXT, b'{"type":"ping"}')
    assert await failed_with(raw) == 1011


@pytest.mark.gen_test
async def test_other_clients_are_served_after_a_broken_frame(botical_app, make_user):
    watcher = await connect(botical_app, (await make_user("watcher")).token)
    raw = await opened(botical_app, make_user)
    await raw.send_frame(FIN | 0x3, b"x")
    assert await failed_with(raw) == 1002
    assert await watcher.request("subscriptions.list") == {"items": []}
    watcher.close()
