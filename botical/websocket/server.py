"""The /ws endpoint: authentication before the upgrade, frames in, responses and events out,
liveness, revocation, limits and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import tornado.websocket

from botical.errors import (
    BoticalError,
    Forbidden,
    InvalidFrame,
    RateLimited,
    Timeout,
    internal_error,
)
from botical.hookspecs import hookimpl
from botical.ids import new_id
from botical.jsonout import dumps
from botical.logredact import log_uncaught
from botical.plugins import await_me_maybe
from botical.websocket import auth, protocol, wire
from botical.websocket.connections import Connection
from botical.websocket.handlers import subscribe as subscriptions

log = logging.getLogger(__name__)


class WebSocketService:
    """Everything the sockets of one app share: dispatch, revalidation, shutdown."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.limits = app.settings.websocket
        self.closing = False
        self._revalidator: asyncio.Task[None] | None = None
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self._revalidator = asyncio.create_task(self._revalidate_loop())
        for name in ("member.*", "project.deleted"):
            self.app.bus.subscribe(name, self._membership_changed)

    def _membership_changed(self, event: Any) -> Any:
        """A user's access changed: recheck each channel their sockets are subscribed to."""
        connections = self.app.connections.for_user(event.user_id) if event.user_id else ()
        if connections:
            return asyncio.gather(*(self.recheck_subscriptions(c) for c in connections))
        return None

    async def recheck_subscriptions(self, connection: Connection) -> None:
        """Drop the channels the connection may no longer see, telling the client."""
        for channel in list(connection.subscriptions):
            try:
                await auth.authorize_channel(
                    self.app, connection.identity, self.app.broadcaster.kinds, channel
                )
            except BoticalError as exc:
                self.app.connections.unsubscribe(connection, channel)
                connection.send(
                    protocol.connection_event(
                        "subscription.revoked", {"channel": channel, "error": exc.to_payload()}
                    )
                )

    def ready_frame(self, connection: Connection) -> str:
        limits = self.limits
        return protocol.connection_event(
            "connection.ready",
            {
                "connectionId": connection.id,
                "userId": connection.user_id,
                "protocol": protocol.PROTOCOL_VERSION,
                "epoch": self.app.epoch,
                "heartbeatMs": int(limits.ping_interval * 1000),
                "limits": {
                    "maxMessageSize": limits.max_message_size,
                    "maxChannels": limits.max_channels,
                    "maxInflight": limits.max_inflight,
                    "rateLimit": limits.rate_limit,
                    "rateBurst": limits.rate_burst,
                },
            },
        )

    def opened(self, connection: Connection) -> None:
        self.app.connections.add(connection)
        connection.start()
        connection.send(self.ready_frame(connection))
        expires = connection.identity.expires_at
        if expires is not None:
            delay = max(0.0, expires / 1000 - time.time())
            self._expiry[connection.id] = asyncio.get_running_loop().call_later(
                delay, connection.close, protocol.CLOSE_AUTH, "Token expired"
            )
        self._run_hooks("botical_connection_opened", connection)

    def closed(self, connection: Connection) -> None:
        self.app.connections.remove(connection)
        connection.discard()
        handle = self._expiry.pop(connection.id, None)
        if handle is not None:
            handle.cancel()
        self._run_hooks("botical_connection_closed", connection)

    def _run_hooks(self, name: str, connection: Connection) -> None:
        for result in getattr(self.app.pm.hook, name)(app=self.app, connection=connection):
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                task = asyncio.ensure_future(await_me_maybe(result))
                task.add_done_callback(_log_failure)

    # -- frames in ------------------------------------------------------------------------

    def receive(self, connection: Connection, message: str | bytes) -> None:
        """Handle one inbound frame. Requests run as tasks, so a slow one blocks nothing."""
        if isinstance(message, bytes):
            connection.send(protocol.error_response(None, InvalidFrame("Use text frames")))
            return
        try:
            frame = protocol.parse_frame(message)
        except BoticalError as exc:
            connection.send(protocol.error_response(protocol.frame_id_of(exc), exc))
            return
        if frame["type"] == "ping":
            connection.send(protocol.pong(frame.get("id")))
            return
        if not self._admit(connection, frame):
            return
        if frame["type"] == "request":
            try:
                result = self.app.dispatcher.answer_now(
                    connection, frame["method"], frame["params"]
                )
            except Exception:  # a faulty `now` function: the handler answers instead
                log.exception("answering %s from memory failed", frame["method"])
                result = None
            if result is not None:
                connection.send(protocol.response(frame["id"], result))
                return
        task = asyncio.create_task(self._handle(connection, frame))
        connection.inflight.add(task)
        task.add_done_callback(connection.inflight.discard)

    def _admit(self, connection: Connection, frame: dict[str, Any]) -> bool:
        error = None
        if not connection.bucket.take():
            error = RateLimited("Too many requests; slow down")
        elif len(connection.inflight) >= self.limits.max_inflight:
            error = RateLimited("Too many requests in flight on this connection")
        if error is None:
            connection.rejected = 0  # abuse means refusals in a row, not over a lifetime
            return True
        connection.rejected += 1
        if connection.rejected > self.limits.abuse_limit:
            connection.close(protocol.CLOSE_ABUSE, "Rate limit abuse")
        else:
            connection.send(protocol.error_response(frame.get("id"), error))
        return False

    async def _handle(self, connection: Connection, frame: dict[str, Any]) -> None:
        frame_id = frame.get("id")
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                result = await self._dispatch(connection, frame)
        except BoticalError as exc:
            connection.send(protocol.error_response(frame_id, exc))
            return
        except TimeoutError:
            connection.send(protocol.error_response(frame_id, Timeout("Request timed out")))
            return
        except Exception:
            log.exception("request %s failed on connection %s", frame.get("method"), connection.id)
            connection.send(protocol.error_response(frame_id, internal_error()))
            return
        if frame["type"] == "request" or frame_id is not None:
            connection.send(protocol.response(frame_id, result))
        elif frame["type"] == "subscribe":
            for item in result["rejected"]:
                connection.send(protocol.connection_event("subscription.rejected", item))

    async def _dispatch(self, connection: Connection, frame: dict[str, Any]) -> Any:
        kind = frame["type"]
        if kind == "request":
            return await self.app.dispatcher.call(connection, frame["method"], frame["params"])
        if kind == "subscribe":
            return await subscriptions.subscribe(self.app, connection, frame)
        return subscriptions.unsubscribe(self.app, connection, frame)

    # -- liveness and shutdown ------------------------------------------------------------

    async def _revalidate_loop(self) -> None:
        while True:
            await asyncio.sleep(self.limits.revalidate_interval)
            try:
                await self.revalidate()
            except Exception:
                log.exception("revalidating connections failed")

    async def revalidate(self) -> None:
        """Close (4001) every connection whose token or API key expired or was revoked."""
        by_credential: dict[tuple[str, str], list[Connection]] = {}
        for connection in self.app.connections:
            key = (connection.identity.kind, connection.identity.credential_id)
            by_credential.setdefault(key, []).append(connection)
        for connections in by_credential.values():
            if not await self.app.auth.still_valid(connections[0].identity):
                for connection in connections:
                    connection.close(protocol.CLOSE_AUTH, "Credential expired or revoked")

    async def shutdown(self, timeout: float) -> None:
        """Tell every client, let queues drain (bounded), then close with 1001."""
        self.closing = True
        if self._revalidator is not None:
            self._revalidator.cancel()
        connections = list(self.app.connections)
        notice = protocol.connection_event(
            "connection.closing", {"reason": "shutdown", "reconnect": True}
        )
        for connection in connections:
            connection.send(notice)
        if connections:
            await asyncio.wait(
                [asyncio.ensure_future(c.flush(timeout)) for c in connections], timeout=timeout
            )
        for connection in connections:
            connection.close(protocol.CLOSE_GOING_AWAY, "Server shutting down")


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a connection hook failed", exc_info=task.exception())


class SocketHandler(tornado.websocket.WebSocketHandler):
    """`GET /ws`: authenticate, then upgrade; frames go to the WebSocketService."""

    connection: Connection | None = None

    @property
    def service(self) -> WebSocketService:
        return self.application.settings["botical"].ws

    async def get(self, *args: Any, **kwargs: Any) -> None:
        app = self.application.settings["botical"]
        service = self.service
        try:
            if service.closing:
                raise BoticalError("Server is shutting down")
            if not self._origin_ok(self.request.headers.get("Origin")):
                raise Forbidden("Origin not allowed")
            self.identity = await auth.authenticate(self.request, app.auth)
            if app.connections.count_for_user(self.identity.user_id) >= (
                service.limits.max_connections_per_user
            ):
                raise RateLimited("Too many connections for this user")
        except BoticalError as exc:
            self.set_status(503 if service.closing else exc.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(dumps({"error": exc.to_payload()}))
            return
        await super().get(*args, **kwargs)

    def _origin_ok(self, origin: str | None) -> bool:
        return auth.origin_allowed(origin, self.request.host, self.service.limits.allowed_origins)

    def check_origin(self, origin: str) -> bool:
        return self._origin_ok(origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in subprotocols else None

    def get_compression_options(self) -> None:
        return None  # frames are small and many; deflate would cost more than it saves

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        return wire.strict(super().get_websocket_protocol())  # close codes for broken frames

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small frames must not wait for the client's delayed ACK
        self.connection = Connection(new_id("conn"), self.identity, self, self.service.limits)
        self.service.opened(self.connection)

    def writing(self) -> bool:
        """Whether Tornado still holds bytes of this socket that the kernel has not taken."""
        ws = self.ws_connection
        return ws is not None and ws.stream is not None and ws.stream.writing()

    def on_message(self, message: str | bytes) -> None:
        if self.connection is not None:
            self.service.receive(self.connection, message)

    def on_close(self) -> None:
        if self.connection is not None:
            self.service.closed(self.connection)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BoticalError):
            return
        log_uncaught(self, typ, value, tb)  # Tornado's own would log the URI with ?token=


@hookimpl
def botical_register_routes(register) -> None:
    register(r"/ws", SocketHandler)
