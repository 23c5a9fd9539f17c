"""Helpers for the WebSocket integration tests: sockets, projects, event streams, watchers.

Everything waits for a frame, an event or a close with a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

import botical
from botical.testing.wsclient import WsClient

SESSION_EVENTS = frozenset(
    {
        "message.created",
        "message.updated",
        "part.created",
        "part.updated",
        "session.updated",
        "tool.approval_required",
        "tool.approval_resolved",
        "agent.status_changed",
        "todo.updated",
    }
)


def ws_url(app: Any) -> str:
    return f"ws://127.0.0.1:{app.port}/ws"


async def connect(app: Any, token: str | None, **kw: Any) -> WsClient:
    """A client connected to `app` with `token` in the query string, past `connection.ready`."""
    return await WsClient.connect(ws_url(app), token, **kw)


async def new_project(person: Any, name: str = "P") -> str:
    resp = await person.api.post("/api/projects", {"name": name})
    assert resp.status == 201, resp.body
    return resp.body["id"]


async def add_member(owner: Any, project_id: str, person: Any, role: str) -> None:
    resp = await owner.api.post(
        f"/api/projects/{project_id}/members", {"userId": person.id, "role": role}
    )
    assert resp.status == 201, resp.body


async def new_session(ws: WsClient, project_id: str) -> str:
    session = await ws.request("sessions.create", projectId=project_id, title="t")
    return session["id"]


async def send(ws: WsClient, session_id: str, content: str) -> str:
    """Send a message over `ws`; return the run id."""
    sent = await ws.request("messages.send", sessionId=session_id, content=content)
    return sent["runId"]


async def settle(ws: WsClient) -> list[dict[str, Any]]:
    """Every frame queued for `ws` so far: a request answered after them is the barrier."""
    await ws.request("subscriptions.list")
    frames, ws.frames[:] = list(ws.frames), []
    return frames


async def take_until(ws: WsClient, last: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """Take frames in arrival order up to and including the first for which `last` is true."""
    taken = []
    while True:
        frame = await ws.next_frame(lambda f: True, timeout)
        taken.append(frame)
        if last(frame):
            return taken


def run_ended(run_id: str, channel: str | None = None):
    """Predicate: the run's final `agent.status_changed` (idle or error)."""

    def match(frame: dict[str, Any]) -> bool:
        return (
            frame.get("event") == "agent.status_changed"
            and frame["data"]["runId"] == run_id
            and frame["data"]["status"] in ("idle", "error")
            and (channel is None or frame["channel"] == channel)
        )

    return match


async def answer_frames(ws: WsClient, run_id: str, channel: str) -> list[dict[str, Any]]:
    """The frames `ws` receives until the run has ended on `channel`."""
    return await take_until(ws, run_ended(run_id, channel))


def on(frames: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("type") == "event" and f["channel"] == channel]


def seqs_covered(frames: list[dict[str, Any]]) -> list[int]:
    """The seqs the frames stand for; a merged delta stands for `mergedFrom`..`seq`."""
    out: list[int] = []
    for frame in frames:
        out.extend(range(frame.get("mergedFrom", frame["seq"]), frame["seq"] + 1))
    return out


def delta_text(frames: list[dict[str, Any]], message_id: str | None = None) -> str:
    """The text the `part.updated` deltas of text parts spell out, in order."""
    return "".join(
        f["data"]["delta"]
        for f in frames
        if f.get("event") == "part.updated"
        and "delta" in f["data"]
        and f["data"]["part"]["type"] == "text"
        and (message_id is None or f["data"]["part"]["messageId"] == message_id)
    )


async def stored_answer(ws: WsClient, session_id: str, run_id: str) -> dict[str, Any]:
    """The stored assistant message of a run, with its parts."""
    listed = await ws.request("messages.list", sessionId=session_id, limit=200)
    return next(m for m in listed["items"] if m["runId"] == run_id and m["role"] == "assistant")


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


class ConnectionWatcher:
    """A plugin that records every connection the server has closed and forgotten."""

    def __init__(self) -> None:
        self.closed: set[str] = set()
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @botical.hookimpl
    async def botical_connection_closed(self, app: Any, connection: Any) -> None:
        async with self._condition():
            self.closed.add(connection.id)
            self._condition().notify_all()

    async def wait_closed(self, connection_id: str, timeout: float = 10) -> None:
        """Return once the server has closed `connection_id` and run its closed hooks."""

        async def closed() -> None:
            async with self._condition():
                await self._condition().wait_for(lambda: connection_id in self.closed)

        await asyncio.wait_for(closed(), timeout)


class RawWebSocket:
    """A bare client on a socket with tiny buffers: it reads only when the test says so.

    A small receive buffer and a small MSS keep the kernel from absorbing much of what the
    server writes, so a client that stops reading pushes back on the server at once.
    """

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buffer = buffered

    @classmethod
    async def open(
        cls, port: int, token: str, timeout: float = 10, path: str = "/ws"
    ) -> RawWebSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (
            f"GET {path}?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, head.encode())
        raw = cls(sock, b"")
        response = await raw._read_until(b"\r\n\r\n", timeout)
        assert response.startswith(b"HTTP/1.1 101"), response
        return raw

    async def _recv(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        if not chunk:
            raise ConnectionError("the server closed the socket without a close frame")
        self.buffer += chunk

    async def _read_until(self, marker: bytes, timeout: float) -> bytes:
        while marker not in self.buffer:
            await self._recv(timeout)
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    async def _read_exactly(self, size: int, timeout: float) -> bytes:
        while len(self.buffer) < size:
            await self._recv(timeout)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def read_frame(self, timeout: float = 10) -> tuple[int, bytes]:
        """One server frame (servers never mask): (opcode, payload)."""
        first, second = await self._read_exactly(2, timeout)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack(">H", await self._read_exactly(2, timeout))
        elif size == 127:
            (size,) = struct.unpack(">Q", await self._read_exactly(8, timeout))
        return first & 0x0F, await self._read_exactly(size, timeout)

    async def read_json(self, timeout: float = 10) -> dict[str, Any]:
        opcode, payload = await self.read_frame(timeout)
        assert opcode == 0x1, (opcode, payload[:200])
        return json.loads(payload)

    async def close_code(self, timeout: float = 10) -> int:
        """Read (and drop) frames until the close frame; return its code."""
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0]

    async def send(self, frame: dict[str, Any] | bytes, opcode: int = 0x1) -> None:
        """Send one masked frame, as clients must."""
        payload = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        await self.send_frame(0x80 | opcode, payload)

    async def send_frame(self, first: int, payload: bytes, masked: bool = True) -> None:
        """Send a frame with any first byte (FIN, RSV bits, opcode), masked or not."""
        mark = 0x80 if masked else 0
        header = bytes([first])
        if len(payload) < 126:
            header += bytes([mark | len(payload)])
        elif len(payload) < 65536:
            header += bytes([mark | 126]) + struct.pack(">H", len(payload))
        else:
            header += bytes([mark | 127]) + struct.pack(">Q", len(payload))
        if masked:
            mask = os.urandom(4)
            header += mask
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await asyncio.get_running_loop().sock_sendall(self.sock, header + payload)

    async def eof(self, timeout: float = 10) -> bool:
        """Whether the server closed the TCP connection (nothing more to read, up to EOF)."""
        loop = asyncio.get_running_loop()
        while chunk := await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout):
            self.buffer += chunk
        return True

    def close(self) -> None:
        self.sock.close()
