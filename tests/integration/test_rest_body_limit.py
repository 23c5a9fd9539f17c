"""Every REST body over `max_body_size` (1 MiB by default) gets 413 PAYLOAD_TOO_LARGE with the
JSON error body, whatever its size and however it is sent; a body within the limit is read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
import tornado.httpclient

from botical.http.bodylimit import DRAIN_LIMIT

MIB = 1024 * 1024
PAYLOAD_TOO_LARGE = {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "Payload too large"}}


def project_body(size: int) -> bytes:
    """A JSON body of exactly `size` bytes (a project with a long description)."""
    head, tail = b'{"name": "big", "description": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def post(app, token: str, body: bytes | None = None, producer: Callable | None = None):
    request = tornado.httpclient.HTTPRequest(
        f"{app.url}/api/projects",
        method="POST",
        body=body,
        body_producer=producer,
        headers={"Authorization": f"Bearer {token}"},
        request_timeout=60,
    )
    return await tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)


@pytest.mark.parametrize(
    "size", [int(1.5 * MIB), 3 * MIB, 50 * MIB], ids=["1.5MiB", "3MiB", "50MiB"]
)
@pytest.mark.gen_test(timeout=60)
async def test_a_body_over_the_limit_is_413_whatever_its_size(botical_app, make_user, size):
    alice = await make_user("alice")
    response = await post(botical_app, alice.token, project_body(size))
    assert response.code == 413
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(response.body) == PAYLOAD_TOO_LARGE
    assert (await alice.api.get("/api/projects")).body["items"] == []


@pytest.mark.parametrize(
    "size", [int(1.5 * MIB), 3 * MIB, 50 * MIB], ids=["1.5MiB", "3MiB", "50MiB"]
)
@pytest.mark.gen_test(timeout=60)
async def test_a_chunked_body_over_the_limit_is_413(botical_app, make_user, size):
    alice = await make_user("alice")
    body = project_body(size)

    async def produce(write):
        for start in range(0, len(body), 256 * 1024):
            await write(body[start : start + 256 * 1024])

    response = await post(botical_app, alice.token, producer=produce)
    assert (response.code, json.loads(response.body)) == (413, PAYLOAD_TOO_LARGE)
    assert (await alice.api.get("/api/projects")).body["items"] == []


@pytest.mark.gen_test(timeout=60)
async def test_a_body_at_the_limit_is_read(botical_app, make_user):
    alice = await make_user("alice")
    response = await post(
        botical_app, alice.token, project_body(botical_app.settings.max_body_size)
    )
    assert response.code == 400  # read and validated: the description is too long
    assert json.loads(response.body)["error"]["code"] == "VALIDATION_ERROR"


async def raw_request(
    app, head: str, body: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode().split("\r\n")[:-2]
    headers = dict(line.split(": ", 1) for line in lines)
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), 10)
    return int(status_line.split()[1]), headers, body


def post_head(app, token: str, length: int, extra: str = "") -> str:
    return (
        f"POST /api/projects HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n{extra}\r\n"
    )


@pytest.mark.gen_test(timeout=60)
async def test_the_answer_comes_before_the_body_and_the_connection_is_kept(botical_app, make_user):
    alice = await make_user("alice")
    body = project_body(3 * MIB)
    reader, writer = await raw_request(botical_app, post_head(botical_app, alice.token, len(body)))
    status, _, payload = await read_response(reader)  # nothing of the body sent yet
    assert (status, json.loads(payload)) == (413, PAYLOAD_TOO_LARGE)
    writer.write(body)  # the server reads and drops it, then serves the next request
    writer.write(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{botical_app.port}\r\n\r\n".encode())
    assert (await read_response(reader))[0] == 200
    writer.close()


@pytest.mark.parametrize(
    "length, extra",
    [(2 * MIB, "Expect: 100-continue\r\n"), (DRAIN_LIMIT + 1, "")],
    ids=["expect-100-continue", "past-the-drain-limit"],
)
@pytest.mark.gen_test(timeout=60)
async def test_a_body_not_worth_waiting_for_is_answered_and_closed(
    botical_app, make_user, length, extra
):
    alice = await make_user("alice")
    reader, writer = await raw_request(
        botical_app, post_head(botical_app, alice.token, length, extra)
    )
    status, headers, payload = await read_response(reader)
    assert (status, headers["Connection"], json.loads(payload)) == (413, "close", PAYLOAD_TOO_LARGE)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # no 100 Continue, no 400: closed
    writer.close()
