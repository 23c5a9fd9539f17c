"""Fake model APIs on 127.0.0.1 that speak the real streaming wire formats.

A `FakeAPI` answers POSTs to one path with the `Reply` a test queued, writing server-sent
events one frame at a time, and records the JSON body and headers of every request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web


@dataclass
class Reply:
    """What the fake answers: server-sent event frames, or a JSON error body with a status."""

    frames: list[str] = field(default_factory=list)
    status: int = 200
    error_body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # drop the connection after the frames, as a network failure would
    stall: bool = False  # after the frames, send nothing more until the fake stops


def sse_data(payload: Any) -> str:
    """One OpenAI frame: `data: {json}`, or the literal `[DONE]`."""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n"


def sse_event(payload: dict[str, Any]) -> str:
    """One Anthropic frame: `event: TYPE` then `data: {json}`."""
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


class FakeAPI:
    """A fake HTTP API serving queued replies on an ephemeral port of 127.0.0.1."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.base_url = ""
        self.stopping = asyncio.Event()
        self._server: tornado.httpserver.HTTPServer | None = None

    async def start(self) -> None:
        """Listen on a fresh port; `base_url` then points at it."""
        app = tornado.web.Application([(self.path, _ReplyHandler, {"api": self})])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)
        self.base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        """Stop listening and release stalled replies."""
        self.stopping.set()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()

    def reply(self, reply: Reply) -> None:
        """Queue the answer to the next request."""
        self.replies.append(reply)


class _ReplyHandler(tornado.web.RequestHandler):
    def initialize(self, api: FakeAPI) -> None:
        self.api = api

    async def post(self) -> None:
        self.api.requests.append(json.loads(self.request.body))
        self.api.headers.append({k.lower(): v for k, v in self.request.headers.get_all()})
        reply = self.api.replies.pop(0)
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        if reply.error_body is not None:
            self.finish(reply.error_body)
            return
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        for frame in reply.frames:
            self.write(frame)
            await self.flush()
        if reply.stall:
            await self.api.stopping.wait()
        if reply.cut:
            self.request.connection.stream.close()  # type: ignore[attr-defined]
            return
        self.finish()


async def collect(provider: Any, request: Any) -> tuple[list[Any], Exception | None]:
    """Run `provider.stream(request)`; return the events it yielded and what it raised."""
    events: list[Any] = []
    try:
        async for event in provider.stream(request):
            events.append(event)
    except Exception as err:
        return events, err
    finally:
        await provider.aclose()
    return events, None
