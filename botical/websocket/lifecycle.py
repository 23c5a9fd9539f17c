"""The life of a WebSocket connection once its upgrade was accepted: registration, token
expiry, revalidation of credentials, channels rechecked when access changes, connection
hooks, and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from botical.errors import BoticalError
from botical.plugins import await_me_maybe
from botical.websocket import protocol
from botical.websocket.connections import Connection
from botical.websocket.subscriptions import authorize_channel

if TYPE_CHECKING:
    from botical.app import Botical
    from botical.bus import Event

log = logging.getLogger(__name__)


class ConnectionService:
    """The life of every socket: registered when it opens, its token's expiry, revalidation,
    channels rechecked when access changes, hooks, and a graceful shutdown."""

    def __init__(self, app: Botical) -> None:
        self.app = app
        self.limits = app.settings.websocket
        self.closing = False
        self._revalidator: asyncio.Task[None] | None = None
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self._revalidator = asyncio.create_task(self._revalidate_loop())
        bus = self.app.bus
        for name in ("member.*", "project.deleted"):
            bus.subscribe(name, self._membership_changed, cluster=True)
        bus.subscribe("credential.revoked", self._credential_revoked, cluster=True)
        bus.subscribe("bus.unavailable", self._bus_lost)

    def _bus_lost(self, event: Event) -> None:
        """The shared bus failed: what these sockets were told may have gaps. Close them so
        that clients reconnect (to a healthy node) and resync."""
        for connection in self.app.connections:
            connection.close(protocol.CLOSE_INTERNAL, "Event bus unavailable; reconnect")

    def _credential_revoked(self, event: Event) -> None:
        """A token or key was revoked: close (4001) the sockets that use it, now (on the next
        loop turn, so that a request that revoked its own credential is answered first)."""
        revoked = (event.data["kind"], event.data["credentialId"])
        loop = asyncio.get_running_loop()
        for connection in self.app.connections.for_user(event.user_id or ""):
            identity = connection.identity
            if (identity.kind, identity.credential_id) == revoked:
                loop.call_soon(connection.close, protocol.CLOSE_AUTH, "Credential revoked")

    def _membership_changed(self, event: Event) -> Any:
        """A user's access changed: recheck each channel their sockets are subscribed to."""
        connections = self.app.connections.for_user(event.user_id) if event.user_id else ()
        if connections:
            return asyncio.gather(*(self.recheck_subscriptions(c) for c in connections))
        return None

    async def recheck_subscriptions(self, connection: Connection) -> None:
        """Drop the channels the connection may no longer see, telling the client."""
        for channel in list(connection.subscriptions):
            try:
                kinds = self.app.broadcaster.kinds
                await authorize_channel(self.app, connection.identity, kinds, channel)
            except BoticalError as exc:
                self.app.connections.unsubscribe(connection, channel)
                self.app.metrics.events_out.inc()
                connection.send(
                    protocol.connection_event(
                        "subscription.revoked", {"channel": channel, "error": exc.to_payload()}
                    )
                )

    def ready_frame(self, connection: Connection) -> str:
        """The first frame a client gets: who it is, the epoch, the limits it must keep."""
        limits = self.limits
        return protocol.connection_event(
            "connection.ready",
            {
                "connectionId": connection.id,
                "userId": connection.user_id,
                "protocol": protocol.PROTOCOL_VERSION,
                "epoch": self.app.broadcaster.epoch,
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
        """Register an authenticated socket, greet it, and close it when its token expires."""
        self.app.connections.add(connection)
        self.app.bus.connection_counted(connection.user_id, 1)
        self.app.metrics.opened.inc()
        connection.start()
        self.app.metrics.events_out.inc()
        connection.send(self.ready_frame(connection))
        expires = connection.identity.expires_at
        if expires is not None:
            delay = max(0.0, expires / 1000 - time.time())
            self._expiry[connection.id] = asyncio.get_running_loop().call_later(
                delay, connection.close, protocol.CLOSE_AUTH, "Token expired"
            )
        self._run_hooks("botical_connection_opened", connection)

    def closed(self, connection: Connection) -> None:
        """Forget a socket that closed: registries, queue, requests, expiry timer."""
        self.app.connections.remove(connection)
        self.app.bus.connection_counted(connection.user_id, -1)
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
        self.app.metrics.events_out.inc(len(connections))
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
