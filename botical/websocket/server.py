"""The /ws endpoint: authentication, Origin and connection limits before the upgrade; then
the socket hands frames to `frames.FrameHandler` and its life to `lifecycle.ConnectionService`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tornado.websocket

from botical.errors import BoticalError, Forbidden, RateLimited
from botical.hookspecs import hookimpl
from botical.ids import new_id
from botical.jsonout import dumps
from botical.logredact import log_uncaught
from botical.websocket import auth, protocol, wire
from botical.websocket.connections import Connection

if TYPE_CHECKING:
    from botical.app import Botical


class SocketHandler(tornado.websocket.WebSocketHandler):
    """`GET /ws`: authenticate, then upgrade; then frames in, frames out."""

    connection: Connection | None = None
    _protocol: Any = None  # kept: Tornado forgets it before on_close, which reads its code

    @property
    def app(self) -> Botical:
        return self.application.settings["botical"]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        app = self.app
        service = app.lifecycle
        try:
            unavailable = service.closing or not app.bus.healthy
            if service.closing:
                raise BoticalError("Server is shutting down")
            if not app.bus.healthy:
                raise BoticalError("Event bus unavailable")
            if not self._origin_ok(self.request.headers.get("Origin")):
                raise Forbidden("Origin not allowed")
            self.identity = await auth.authenticate(self.request, app.auth)
            user = self.identity.user_id
            open_ = await app.bus.connections_of(user, app.connections.count_for_user(user))
            if open_ >= service.limits.max_connections_per_user:
                raise RateLimited("Too many connections for this user")
        except BoticalError as exc:
            self.set_status(503 if unavailable else exc.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(dumps({"error": exc.to_payload()}))
            return
        await super().get(*args, **kwargs)

    def _origin_ok(self, origin: str | None) -> bool:
        allowed = self.app.settings.websocket.allowed_origins
        return auth.origin_allowed(origin, self.request.host, allowed)

    def check_origin(self, origin: str) -> bool:
        return self._origin_ok(origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return protocol.SUBPROTOCOL if protocol.SUBPROTOCOL in subprotocols else None

    def get_compression_options(self) -> None:
        return None  # frames are small and many; deflate would cost more than it saves

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        self._protocol = wire.strict(super().get_websocket_protocol())  # close codes, kept
        return self._protocol

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small frames must not wait for the client's delayed ACK
        app = self.app
        self.connection = Connection(
            new_id("conn"), self.identity, self, app.settings.websocket, app.metrics.merged
        )
        app.lifecycle.opened(self.connection)

    def writing(self) -> bool:
        """Whether Tornado still holds bytes of this socket that the kernel has not taken."""
        ws = self.ws_connection
        return ws is not None and ws.stream is not None and ws.stream.writing()

    def on_message(self, message: str | bytes) -> None:
        if self.connection is not None:
            self.app.frames.receive(self.connection, message)

    def on_close(self) -> None:
        if self.connection is not None:
            self.app.metrics.closed(*wire.closed_by(self._protocol))
            self.app.lifecycle.closed(self.connection)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BoticalError):
            return
        log_uncaught(self, typ, value, tb)  # Tornado's own would log the URI with ?token=


@hookimpl
def botical_register_routes(register) -> None:
    register(r"/ws", SocketHandler)
