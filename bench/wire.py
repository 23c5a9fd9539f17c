"""A lean asyncio WebSocket client for the load generator (stdlib only).

Tornado's own client parses every frame through several coroutines; at a million frames a run
that would make the load generator, not the server, the bottleneck. This client is an
`asyncio.Protocol`: frames are cut out of the read buffer in `data_received` and handed to
`on_text(payload, t_ns)` as raw bytes, stamped with one `time.monotonic_ns()` per read (the
same clock as the servers', CLOCK_MONOTONIC). Subclasses decide whether to parse JSON at all.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import time
from typing import Any

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HANDSHAKE = 65536
NO_CLOSE_FRAME = 1006


class HandshakeError(Exception):
    """The server refused the upgrade (its status line and body are in the message)."""


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame, masked with a random key as RFC 6455 requires."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if not n:
        return head + key
    stream = (key * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")
    return head + key + masked.to_bytes(n, "big")


class WsClient(asyncio.Protocol):
    """One client socket. Override `on_text`; `send_text` writes a frame."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.first: asyncio.Future[bytes] = loop.create_future()  # e.g. connection.ready
        self.close_code: int | None = None
        self.frames_in = 0
        self.pings_in = 0  # protocol-level pings from the server (answered at once)
        self._buf = bytearray()
        self._upgraded = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self._buf += data
        if not self._upgraded and not self._read_handshake():
            return
        self._read_frames(now)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.opened, self.first):
            if not future.done():
                future.set_exception(ConnectionError(f"closed before it opened: {exc}"))
                future.exception()  # retrieved: whoever awaits it still gets the error
        self._finish(NO_CLOSE_FRAME if self.close_code is None else self.close_code)

    # -- frames ----------------------------------------------------------------------------

    def _read_handshake(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HANDSHAKE:
                self._fail("handshake response too long")
            return False
        head = bytes(self._buf[:end]).decode("latin-1")
        status = head.split("\r\n", 1)[0]
        if " 101 " not in status + " ":
            self._fail(f"{status}: {bytes(self._buf[end + 4 :])[:300]!r}")
            return False
        del self._buf[: end + 4]
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _fail(self, message: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(message))
            self.opened.exception()
        if self.transport is not None:
            self.transport.close()

    def _read_frames(self, now: int) -> None:
        buf, pos, end = self._buf, 0, len(self._buf)
        while end - pos >= 2:
            b0, n = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if end - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            self._frame(b0 & 0x0F, payload, now)
        if pos:
            del buf[:pos]

    def _frame(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode == OP_TEXT:
            self.frames_in += 1
            if not self.first.done():
                self.first.set_result(payload)
                return
            self.on_text(payload, now)
        elif opcode == OP_PING:
            self.pings_in += 1
            self._write(encode_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._write(encode_frame(OP_CLOSE, payload[:2]))
            if self.transport is not None:
                self.transport.close()
            self._finish(self.close_code)

    def _finish(self, code: int) -> None:
        if not self.closed.done():
            self.closed.set_result(code)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def on_text(self, payload: bytes, t_ns: int) -> None:
        """A text frame arrived at `t_ns` (monotonic). Subclasses override."""

    def send_text(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self._write(encode_frame(OP_TEXT, data))

    def close(self, code: int = 1000) -> None:
        """Send a close frame and drop the socket without waiting for the server's."""
        self._write(encode_frame(OP_CLOSE, code.to_bytes(2, "big")))
        if self.transport is not None:
            self.transport.close()


class RpcClient(WsClient):
    """Parses every frame: requests by id, other frames kept in order (for setup, not load)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Event()
        self._ids = itertools.count(1)

    def on_text(self, payload: bytes, t_ns: int) -> None:
        frame = json.loads(payload)
        future = self._pending.pop(frame.get("id") or "", None)
        if frame.get("type") in ("response", "pong") and future is not None:
            if not future.done():
                future.set_result(frame)
            return
        self.events.append(frame)
        self._arrived.set()

    async def call(self, frame: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send `frame` with a fresh id; return the whole answer frame."""
        frame_id = frame.setdefault("id", f"c{next(self._ids)}")
        future = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        self.send_text(json.dumps(frame))
        return await asyncio.wait_for(future, timeout)

    async def request(self, method: str, params: dict[str, Any], timeout: float = 30) -> Any:
        """Call a method; return its result or raise RuntimeError with the error payload."""
        answer = await self.call({"type": "request", "method": method, "params": params}, timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def subscribe(self, channel: str, timeout: float = 30) -> dict[str, Any]:
        answer = await self.call({"type": "subscribe", "channels": [channel]}, timeout)
        if "error" in answer or answer["result"]["rejected"]:
            raise RuntimeError(f"subscribe {channel}: {answer}")
        return answer["result"]

    async def next_event(self, event: str, timeout: float = 30, **data: Any) -> dict[str, Any]:
        """The first kept event named `event` whose data has every key=value given (removed)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, frame in enumerate(self.events):
                if frame.get("event") == event and all(
                    frame.get("data", {}).get(k) == v for k, v in data.items()
                ):
                    return self.events.pop(index)
            self._arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0 or self.closed.done():
                raise TimeoutError(f"no {event} {data} within {timeout}s")
            await asyncio.wait_for(self._arrived.wait(), left)


async def connect(
    factory: type[WsClient] | Any,
    host: str,
    port: int,
    path: str,
    *,
    rcvbuf: int | None = None,
    timeout: float = 30,
    wait_first: bool = True,
) -> Any:
    """Open a socket (loopback), upgrade it, wait for the server's first frame (Botical's
    `connection.ready`; the baseline sends the same) and return the protocol instance."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:  # before connect, so the advertised window starts small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        _, client = await loop.create_connection(factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    key = base64.b64encode(os.urandom(16)).decode()
    client.transport.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        await asyncio.wait_for(client.opened, timeout)
        if wait_first:
            await asyncio.wait_for(client.first, timeout)
    except BaseException:
        client.transport.close()
        raise
    return client
