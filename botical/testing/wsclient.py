"""A small WebSocket client for tests: requests by id, events in arrival order, timeouts."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import tornado.httpclient
import tornado.websocket


class WsError(Exception):
    """An error response: `code`, `message`, `details`."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('code')}: {payload.get('message')}")
        self.code = payload.get("code")
        self.message = payload.get("message")
        self.details = payload.get("details")


class WsClient:
    """Reads every frame in the background: responses resolve requests, the rest queue up."""

    def __init__(self, conn: tornado.websocket.WebSocketClientConnection) -> None:
        self.conn = conn
        self.frames: list[dict[str, Any]] = []  # non-response frames not yet taken, in order
        self.received: list[dict[str, Any]] = []  # every non-response frame, taken or not
        self.close_code: int | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self._reader = asyncio.ensure_future(self._read())
        self.ready: dict[str, Any] = {}

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        query: bool = True,
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
        timeout: float = 10,
    ) -> WsClient:
        """Open `url` (ws://host:port/ws) and wait for `connection.ready`."""
        target = f"{url}?token={token}" if token and query else url
        request = tornado.httpclient.HTTPRequest(target, headers=headers or {})
        conn = await asyncio.wait_for(
            tornado.websocket.websocket_connect(request, subprotocols=subprotocols), timeout
        )
        client = cls(conn)
        ready = await client.next_event("connection.ready", timeout=timeout)
        client.ready = ready["data"]
        return client

    async def _read(self) -> None:
        while True:
            message = await self.conn.read_message()
            if message is None:
                self.close_code = self.conn.close_code
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ConnectionError("connection closed"))
                async with self._arrived:
                    self._arrived.notify_all()
                return
            frame = json.loads(message)
            if frame.get("type") == "response" and frame.get("id") in self._pending:
                self._pending.pop(frame["id"]).set_result(frame)
                continue
            async with self._arrived:
                self.received.append(frame)
                self.frames.append(frame)
                self._arrived.notify_all()

    def send_raw(self, text: str | dict[str, Any]) -> None:
        self.conn.write_message(text if isinstance(text, str) else json.dumps(text))

    async def call(self, frame: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a frame with a fresh id and return the whole response frame."""
        frame_id = frame.setdefault("id", f"r{next(self._ids)}")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        self.send_raw(frame)
        return await asyncio.wait_for(future, timeout)

    async def request(self, method: str, timeout: float = 10, **params: Any) -> Any:
        """Call a method; return its result or raise WsError."""
        frame = await self.call({"type": "request", "method": method, "params": params}, timeout)
        if "error" in frame:
            raise WsError(frame["error"])
        return frame["result"]

    async def subscribe(
        self, *channels: str, since: dict[str, int] | None = None, timeout: float = 10
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "channels": list(channels)}
        if since is not None:
            frame["since"] = since
            frame["epoch"] = self.ready.get("epoch")
        response = await self.call(frame, timeout)
        if "error" in response:
            raise WsError(response["error"])
        return response["result"]

    async def next_frame(self, predicate, timeout: float = 10) -> dict[str, Any]:
        """The first frame (not yet taken) matching `predicate`; it is removed from the queue."""

        async def find() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for index, frame in enumerate(self.frames):
                        if predicate(frame):
                            return self.frames.pop(index)
                    if self.close_code is not None or self._reader.done():
                        raise ConnectionError(f"closed with {self.close_code}")
                    await self._arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def next_event(self, event: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The next event frame named `event` whose data has every `key=value` of `match`."""

        def wanted(frame: dict[str, Any]) -> bool:
            if frame.get("type") != "event" or frame.get("event") != event:
                return False
            return all(_dig(frame["data"], k) == v for k, v in match.items())

        return await self.next_frame(wanted, timeout)

    async def closed(self, timeout: float = 10) -> int | None:
        """Wait until the server closes the socket; return the close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    def close(self) -> None:
        self.conn.close()
        self._reader.cancel()


def _dig(data: Any, dotted: str) -> Any:
    for piece in dotted.split("__"):
        data = data.get(piece) if isinstance(data, dict) else None
    return data
