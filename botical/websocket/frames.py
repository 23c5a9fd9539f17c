"""Frames in: parse, admit (rate and in-flight limits), dispatch, answer. Requests run as
tasks, so a slow one blocks nothing; a few are answered from memory as the frame arrives."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from botical.errors import BoticalError, InvalidFrame, RateLimited, Timeout, internal_error
from botical.websocket import protocol, subscriptions
from botical.websocket.connections import Connection

if TYPE_CHECKING:
    from botical.app import Botical

log = logging.getLogger(__name__)


class FrameHandler:
    """What every socket's inbound frames go through."""

    def __init__(self, app: Botical) -> None:
        self.app = app
        self.dispatcher = app.dispatcher
        self.limits = app.settings.websocket
        self.metrics = metrics = app.metrics
        self._frames_in = {kind: metrics.frames_in(kind) for kind in protocol.FRAME_SCHEMAS}
        self._broken = metrics.frames_in("invalid")

    def receive(self, connection: Connection, message: str | bytes) -> None:
        """Handle one inbound frame."""
        if isinstance(message, bytes):
            self.metrics.frames_in("binary").inc()
            self._respond(
                connection, protocol.error_response(None, InvalidFrame("Use text frames"))
            )
            return
        try:
            frame = protocol.parse_frame(message)
        except BoticalError as exc:
            self._broken.inc()
            self._respond(connection, protocol.error_response(protocol.frame_id_of(exc), exc))
            return
        self._frames_in[frame["type"]].inc()
        if frame["type"] == "ping":
            self.metrics.pongs.inc()
            connection.send(protocol.pong(frame.get("id")))
            return
        if not self._admit(connection, frame):
            return
        if frame["type"] == "request" and self._answered_now(connection, frame):
            return
        task = asyncio.create_task(self._handle(connection, frame))
        connection.inflight.add(task)
        task.add_done_callback(connection.inflight.discard)

    def _respond(self, connection: Connection, text: str) -> None:
        self.metrics.responses.inc()
        connection.send(text)

    def _answered_now(self, connection: Connection, frame: dict[str, Any]) -> bool:
        try:
            result = self.dispatcher.answer_now(
                connection.identity, connection, frame["method"], frame["params"]
            )
        except Exception:  # a faulty `now` function: the handler answers instead
            log.exception("answering %s from memory failed", frame["method"])
            return False
        if result is None:
            return False
        self._respond(connection, protocol.response(frame["id"], result))
        return True

    def _admit(self, connection: Connection, frame: dict[str, Any]) -> bool:
        """Apply the rate and in-flight limits; refusals count over the connection's life and
        past `abuse_limit` of them the connection is closed (4029)."""
        error = None
        if not connection.bucket.take():
            error = RateLimited("Too many requests; slow down")
        elif len(connection.inflight) >= self.limits.max_inflight:
            error = RateLimited("Too many requests in flight on this connection")
        if error is None:
            return True
        connection.rejected += 1
        if connection.rejected > self.limits.abuse_limit:
            connection.close(protocol.CLOSE_ABUSE, "Rate limit abuse")
        else:
            self._respond(connection, protocol.error_response(frame.get("id"), error))
        return False

    async def _handle(self, connection: Connection, frame: dict[str, Any]) -> None:
        frame_id = frame.get("id")
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                result = await self._dispatch(connection, frame)
        except BoticalError as exc:
            self._respond(connection, protocol.error_response(frame_id, exc))
            return
        except TimeoutError:
            self._respond(
                connection, protocol.error_response(frame_id, Timeout("Request timed out"))
            )
            return
        except Exception:
            log.exception("request %s failed on connection %s", frame.get("method"), connection.id)
            self._respond(connection, protocol.error_response(frame_id, internal_error()))
            return
        if frame["type"] == "request" or frame_id is not None:
            self._respond(connection, protocol.response(frame_id, result))
        elif frame["type"] == "subscribe":
            for item in result["rejected"]:
                self.metrics.events_out.inc()
                connection.send(protocol.connection_event("subscription.rejected", item))

    async def _dispatch(self, connection: Connection, frame: dict[str, Any]) -> Any:
        kind = frame["type"]
        if kind == "request":
            return await self.dispatcher.call(
                connection.identity, frame["method"], frame["params"], connection
            )
        if kind == "subscribe":
            return await subscriptions.subscribe(self.app, connection, frame)
        return subscriptions.unsubscribe(self.app, connection, frame)
