"""`BoticalClient`: one WebSocket to a Botical server, with requests, subscriptions, and
reconnect-and-resume done for the caller (docs/client.md). This module keeps the socket:
connecting, requests matched by id, the connection state, and reconnecting with jittered
exponential backoff; `botical.client.channels` keeps the subscriptions."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

import tornado.httpclient
import tornado.websocket

from botical.client.channels import Channels
from botical.client.errors import (
    ClientClosed,
    ClientError,
    ConnectionFailed,
    ConnectionLost,
    Forbidden,
    Timeout,
    Unauthorized,
    error_from_payload,
)
from botical.client.events import ConnectionState, Subscription
from botical.client.rest import rest_request
from botical.client.urls import server_url

log = logging.getLogger(__name__)

CLOSE_AUTH = 4001  # credential expired or revoked: do not retry with it
CLOSE_TOO_SLOW = 4008  # reconnect at once and resume
CLOSE_ABUSE = 4029  # back off for longer
MAX_MESSAGE_SIZE = 256 * 1024 * 1024  # a sessions.sync result carries the whole session
StateCallback = Callable[[ConnectionState, str], None]
Socket = tornado.websocket.WebSocketClientConnection


class BoticalClient:
    """A connection to `url` authenticated with `token` (a JWT or an API key). `url` is what
    `botical serve` prints (`http://host:4096/?token=...`, whose token is used when `token` is
    not given), a WebSocket URL (`ws://host:4096/ws`) or `host:port`; `InvalidURL` otherwise.
    Use `async with BoticalClient(...) as client:` or `connect()` / `close()`."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        request_timeout: float = 30.0,
        reconnect: bool = True,
        initial_backoff: float = 0.25,
        max_backoff: float = 10.0,
        connect_timeout: float = 10.0,
        heartbeat: float = 20.0,
        on_state: StateCallback | None = None,
    ) -> None:
        server = server_url(url)
        if not (token or server.token):
            raise Unauthorized("No token: pass one, or the URL botical serve printed (?token=)")
        self.url = server.ws
        self.http_url = server.http
        self.token: str = token or server.token or ""
        self.request_timeout = request_timeout
        self.reconnect = reconnect
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.heartbeat = heartbeat
        self.on_state = on_state
        self.ready: dict[str, Any] = {}  # data of the last connection.ready
        self.epoch: str | None = None
        self.error: ClientError | None = None  # why the client closed for good, if it did
        self.close_code: int | None = None  # of the last socket that closed
        self.close_reason: str | None = None
        self.state_detail = ""
        self._state = ConnectionState.IDLE
        self._conn: Socket | None = None
        self._generation = 0  # one per socket; stale background work checks it
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._runner: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._channels = Channels(self)

    # -- public API ------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def connection_id(self) -> str | None:
        return self.ready.get("connectionId")

    @property
    def user_id(self) -> str | None:
        return self.ready.get("userId")

    async def __aenter__(self) -> BoticalClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection; raise `Unauthorized` or `ConnectionFailed` if it cannot."""
        if self._state is not ConnectionState.IDLE:
            raise RuntimeError("connect() was already called")
        self._set_state(ConnectionState.CONNECTING, f"connecting to {self.url}")
        try:
            conn, ready = await self._open()
        except ClientError as exc:
            self._finish(exc)
            raise
        self._adopt(conn, ready)
        self._runner = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Close for good: pending requests fail with `ClientClosed`, subscriptions end."""
        if self._state is ConnectionState.CLOSED:
            return
        conn = self._conn
        self._finish(None)
        if conn is not None:
            conn.close(1000, "Client closing")
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def request(self, method: str, timeout: float | None = None, **params: Any) -> Any:
        """Call `method` with `params`; return its result or raise the typed error.

        While reconnecting, the request waits for the connection (within `timeout`, default
        `request_timeout`). A request in flight when the socket drops raises `ConnectionLost`.
        """
        frame = {"type": "request", "method": method, "params": params}
        response = await self._call(frame, timeout, method)
        if "error" in response:
            raise error_from_payload(response["error"])
        return response.get("result")

    async def subscribe(self, channel: str, timeout: float | None = None) -> Subscription:
        """Subscribe to `channel` (`session:ID`, `project:ID`, `user:ID`) and return an async
        iterator of its events. Raises the server's error (e.g. `Forbidden`) if refused."""
        return await self._channels.subscribe(channel, timeout)

    async def unsubscribe(self, channel: str, timeout: float | None = None) -> None:
        """Stop a channel: its iterators end, and it is not resumed after a reconnect."""
        await self._channels.unsubscribe(channel, timeout)

    async def rest(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (`GET /api/projects`, ...) with the same credential."""
        return await rest_request(
            self.http_url, self.token, method, path, body, self.request_timeout
        )

    def drop_connection(self) -> None:
        """Close the current socket as a network failure would: the client reconnects and
        resumes. For tests and for forcing a fresh socket."""
        if self._conn is not None:
            self._conn.close(4000, "Dropped by the client")

    # -- connecting ------------------------------------------------------------------------

    async def _open(self) -> tuple[Socket, dict[str, Any]]:
        request = tornado.httpclient.HTTPRequest(
            self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            connect_timeout=self.connect_timeout,
            request_timeout=self.connect_timeout,
        )
        try:
            conn = await tornado.websocket.websocket_connect(
                request,
                subprotocols=["botical.v1"],
                ping_interval=self.heartbeat or None,
                ping_timeout=self.heartbeat or None,
                max_message_size=MAX_MESSAGE_SIZE,
            )
        except tornado.httpclient.HTTPClientError as exc:
            raise _refusal(exc) from None
        except tornado.websocket.WebSocketError as exc:  # e.g. a page answered, not a socket
            raise ConnectionFailed(f"Cannot open a WebSocket at {self.url}: {exc}") from None
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailed(f"Cannot connect to {self.url}: {reason}") from None
        try:
            message = await asyncio.wait_for(conn.read_message(), self.connect_timeout)
            frame = json.loads(message) if isinstance(message, str) else {}
        except (TimeoutError, ValueError):
            frame = {}
        if frame.get("event") != "connection.ready":
            conn.close()
            raise ConnectionFailed(f"{self.url} did not send connection.ready")
        return conn, frame["data"]

    def _adopt(self, conn: Socket, ready: dict[str, Any]) -> None:
        previous_epoch = self.epoch
        self._conn, self.ready, self.epoch = conn, ready, ready.get("epoch")
        self._generation += 1
        self._set_state(ConnectionState.CONNECTED, f"connected ({self.connection_id})")
        self._channels.connected(previous_epoch)

    async def _run(self) -> None:
        """Read the socket; when it drops, reconnect with backoff unless that is pointless."""
        while True:
            conn = self._conn
            assert conn is not None
            await self._read(conn)
            if self._state is ConnectionState.CLOSED:
                return
            self.close_code, self.close_reason = conn.close_code, conn.close_reason
            detail = _describe_close(conn.close_code, conn.close_reason)
            self._connection_lost(detail)
            if conn.close_code == CLOSE_AUTH:
                self._finish(Unauthorized(conn.close_reason or "Credential expired or revoked"))
                return
            if not self.reconnect:
                self._finish(ConnectionLost(f"Connection closed: {detail}"))
                return
            self._set_state(ConnectionState.RECONNECTING, detail)
            try:
                conn, ready = await self._reconnect(conn.close_code)
            except ClientError as exc:
                self._finish(exc)
                return
            self._adopt(conn, ready)

    async def _reconnect(self, close_code: int | None) -> tuple[Socket, dict[str, Any]]:
        attempt = 3 if close_code == CLOSE_ABUSE else 0
        wait = close_code != CLOSE_TOO_SLOW
        while True:
            if wait:
                await asyncio.sleep(self._backoff(attempt))  # backoff, not a wait for an event
            wait, attempt = True, attempt + 1
            try:
                return await self._open()
            except (Unauthorized, Forbidden):
                raise
            except ClientError as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of the capped delay."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _read(self, conn: Socket) -> None:
        while True:
            message = await conn.read_message()
            if message is None:
                return
            if not isinstance(message, str):
                continue
            try:
                self._dispatch(json.loads(message))
            except Exception:
                log.exception("could not handle a frame from %s", self.url)

    def _connection_lost(self, detail: str) -> None:
        self._conn = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"Connection lost ({detail})"))
        self._channels.lost()

    def _finish(self, error: ClientError | None) -> None:
        """Close for good: fail what waits, end every subscription, stop background work."""
        if self._state is ConnectionState.CLOSED:
            return
        self.error = error
        closed = self._closed_error()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(closed)
        self._channels.finish(error)
        for task in self._tasks:
            task.cancel()
        self._set_state(ConnectionState.CLOSED, error.message if error else "closed")

    def _closed_error(self) -> ClientError:
        if self.error is None:
            return ClientClosed("The client is closed")
        return type(self.error)(self.error.message, self.error.details, code=self.error.code)

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        self._state, self.state_detail = state, detail
        if state in (ConnectionState.CONNECTED, ConnectionState.CLOSED):
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        log.debug("connection %s: %s", state, detail)
        if self.on_state is not None:
            try:
                self.on_state(state, detail)
            except Exception:
                log.exception("on_state callback failed")

    # -- frames ----------------------------------------------------------------------------

    async def _call(self, frame: dict[str, Any], timeout: float | None, what: str) -> Any:
        """Send `frame` with a fresh id once connected; return the response frame."""
        loop = asyncio.get_running_loop()
        timeout = self.request_timeout if timeout is None else timeout
        deadline = loop.time() + timeout
        await self._connected(deadline, timeout)
        frame_id = f"c{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[frame_id] = future
        try:
            self._send({**frame, "id": frame_id})
            return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise Timeout(f"No answer to {what} within {timeout:g} s") from None
        finally:
            self._pending.pop(frame_id, None)

    async def _connected(self, deadline: float, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        while self._state is not ConnectionState.CONNECTED:
            if self._state is ConnectionState.CLOSED:
                raise self._closed_error()
            if self._state is ConnectionState.IDLE:
                raise ClientClosed("Not connected: call connect() first")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Timeout(f"Not connected within {timeout:g} s") from None

    def _send(self, frame: dict[str, Any]) -> None:
        if self._conn is None:
            raise ConnectionLost("Not connected")
        try:
            sent = self._conn.write_message(json.dumps(frame))
        except tornado.websocket.WebSocketClosedError:
            raise ConnectionLost("The connection closed") from None
        # a write failing later shows up as a lost connection; only mark it retrieved here
        sent.add_done_callback(lambda done: done.cancelled() or done.exception())

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "response":
            future = self._pending.pop(frame.get("id") or "", None)
            if future is not None and not future.done():
                future.set_result(frame)
            elif frame.get("error"):
                log.warning("error response without a request: %s", frame["error"])
        elif kind == "event":
            if frame.get("channel") == "connection":
                self._channels.on_connection_event(frame)
            else:
                self._channels.on_event(frame)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client background task failed", exc_info=task.exception())


def _refusal(exc: tornado.httpclient.HTTPClientError) -> ClientError:
    """The typed error for an upgrade the server refused (its JSON body, when it sent one)."""
    body = exc.response.body if exc.response is not None else b""
    try:
        payload = json.loads(body)["error"]
    except (ValueError, TypeError, KeyError):
        return ConnectionFailed(f"WebSocket upgrade failed: HTTP {exc.code} {exc.message}")
    return error_from_payload(payload)


def _describe_close(code: int | None, reason: str | None) -> str:
    if code is None:
        return "connection closed without a close frame"
    return f"closed with {code}" + (f": {reason}" if reason else "")
