"""MCP tool servers: the pool of connections behind custom tools of kind `mcp`.

One custom-tool record is one server; its tools are the project's tools `mcp.<server>.<tool>`.
A server starts when its tools are first listed or called, is shared by every run of its
project, and is started again after it died; its tool list is kept while it runs and dropped
with it. Every start and every call has a time limit, what a server sends is bounded, idle
servers stop after `[tools] mcp_idle_timeout`, and `close()` stops them all. The `mcp` SDK is
imported on first use, so Botical runs without it; a server then fails with a clear message.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import referencing
from jsonschema import Draft202012Validator

from botical import __version__
from botical.config import ToolSettings
from botical.errors import NotFound
from botical.services.mcp_config import SDK_MISSING
from botical.tools.base import Tool, ToolContext, ToolFailure, ToolResult
from botical.tools.custom import SECRET_MASK, check_arguments, read_tool_secret, render
from botical.tools.mcp_content import RemoteTool, as_tool_result, list_tools
from botical.tools.sandbox import minimal_env

if TYPE_CHECKING:
    from botical.tools.mcp_stdio import StdioServer

log = logging.getLogger(__name__)
RETRY_AFTER = 5.0  # seconds a failed start is remembered, so a broken server fails fast
MAX_FAILURES = 1000
STOP_TIMEOUT = 10.0  # seconds to wait for a server to stop before abandoning its task
HTTP_TIMEOUT = 30.0  # connect and write timeout of the HTTP transport


def sdk() -> Any:
    """The `mcp` package, or ToolFailure saying how to install it."""
    try:
        return importlib.import_module("mcp")
    except ImportError:
        raise ToolFailure(SDK_MISSING) from None


@dataclass
class Connection:
    """One running server: the SDK client, owned by one task that enters and leaves it."""

    key: tuple[str, ...]
    server: str
    ready: asyncio.Future[list[RemoteTool]]
    secrets: list[str] = field(default_factory=list)
    client: Any = None
    process: StdioServer | None = None  # stdio servers only
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    dead: bool = False
    busy: int = 0
    idle_timer: asyncio.TimerHandle | None = None
    last_used: float = 0.0
    failure: str | None = None  # why it did not start, as the first to see it said

    async def why_stopped(self) -> str:
        if self.process is None:
            return "the connection was closed"
        return await self.process.stopped_because()

    def mask(self, text: str) -> str:
        """`text` with every secret this server was given replaced (servers may echo them)."""
        for value in self.secrets:
            text = text.replace(value, SECRET_MASK)
        return text


class McpServers:
    """The MCP servers of this node, one connection per custom-tool record (by id)."""

    def __init__(self, limits: ToolSettings, data_dir: Path) -> None:
        self._limits = limits
        self._data_dir = data_dir
        self._connections: dict[str, Connection] = {}
        self._failures: dict[tuple[str, ...], tuple[float, str]] = {}
        self._closed = False

    async def tools(self, record: dict[str, Any], workspace: Path | None) -> list[Tool]:
        """The server's tools as Botical tools; a server that cannot be reached has none."""
        try:
            connection = await self._connect(record, workspace)
        except ToolFailure as exc:
            log.warning("MCP server %s (%s) lists no tools: %s", record["name"], record["id"], exc)
            return []
        return [self._tool(record, tool) for tool in connection.ready.result()]

    async def call(
        self, record: dict[str, Any], workspace: Path | None, remote: str, args: dict[str, Any]
    ) -> ToolResult:
        """Call one tool of the server; every failure is a ToolFailure with a clear message."""
        connection = await self._connect(record, workspace)
        timeout = record["config"]["timeout"]
        connection.busy += 1
        self._touch(connection)
        try:
            result = await asyncio.wait_for(
                connection.client.call_tool(remote, args, read_timeout_seconds=timeout),
                timeout + 1,  # the SDK's own limit comes first; this one only guards it
            )
        except Exception as exc:
            failure = await self._call_failure(connection, remote, exc, timeout)
            raise ToolFailure(connection.mask(failure)) from None
        finally:
            connection.busy -= 1
            self._touch(connection)
        return as_tool_result(result, self._limits.output_limit, connection.mask)

    def forget(self, tool_id: str) -> None:
        """Stop the server of a record that changed or was removed."""
        connection = self._connections.pop(tool_id, None)
        if connection is not None:
            self._stop(connection)

    async def close(self) -> None:
        """Stop every server (on shutdown); later starts are refused."""
        self._closed = True
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            self._stop(connection)
        tasks = [c.task for c in connections if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        # A cancelled start leaves its process to a shielded stop: wait for those too.
        stopping = [c.process.stopping for c in connections if c.process and c.process.stopping]
        if stopping:
            await asyncio.wait(stopping, timeout=STOP_TIMEOUT)

    # -- connections ------------------------------------------------------------------------

    async def _connect(self, record: dict[str, Any], workspace: Path | None) -> Connection:
        """A running server for `record` that has listed its tools, started when needed."""
        key = _key(record, workspace)
        connection = self._connections.get(record["id"])
        if connection is None or connection.key != key or connection.dead:
            connection = self._start(record, workspace, key)
        try:
            await asyncio.wait_for(asyncio.shield(connection.ready), self._limits.mcp_start_timeout)
        except TimeoutError:
            late = f"it did not answer within {self._limits.mcp_start_timeout:g}s"
            failure = self._failed(connection, _could_not_start(record["name"], late))
            raise ToolFailure(failure) from None
        except ToolFailure as exc:
            raise ToolFailure(self._failed(connection, str(exc))) from None
        self._failures.pop(key, None)
        self._touch(connection)
        return connection

    def _start(self, record: dict[str, Any], workspace: Path | None, key: tuple[str, ...]):
        if self._closed:
            raise ToolFailure("Botical is shutting down")
        failed = self._failures.get(key)
        if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER:
            raise ToolFailure(failed[1])
        old = self._connections.pop(record["id"], None)
        if old is not None:
            self._stop(old)
        self._make_room()
        connection = Connection(key, record["name"], asyncio.get_running_loop().create_future())
        self._connections[record["id"]] = connection
        connection.task = asyncio.create_task(self._serve(connection, record, workspace))
        return connection

    async def _serve(self, connection: Connection, record: dict[str, Any], workspace: Path | None):
        """Own the server's SDK client for its whole life: enter it, list its tools, wait."""
        try:
            mcp = sdk()  # first: the transports import it too
            transport = self._transport(connection, record["config"], workspace)
            client = mcp.Client(
                transport,
                read_timeout_seconds=self._limits.mcp_start_timeout,
                client_info=mcp.types.Implementation(name="botical", version=__version__),
                cache=None,  # the pool keeps the tool list; nothing else is asked twice
            )
            async with client:
                tools = await list_tools(client, connection.server)
                connection.client = client
                connection.ready.set_result(tools)
                await _stopped_or_gone(connection)
        except Exception as exc:
            failure = connection.mask(await _start_failure(connection, exc))
            if not connection.ready.done():
                connection.ready.set_exception(
                    ToolFailure(_could_not_start(connection.server, failure))
                )
            else:
                log.info("MCP server %s stopped: %s", connection.server, failure)
        finally:
            connection.dead = True
            if not connection.ready.done():
                stopped = _could_not_start(connection.server, "it was stopped")
                connection.ready.set_exception(ToolFailure(stopped))

    def _transport(self, connection: Connection, config: dict[str, Any], workspace: Path | None):
        def secret(name: str) -> str:
            value = read_tool_secret(name, self._data_dir)
            connection.secrets.append(value)
            return value

        max_message = self._limits.mcp_max_message_size
        if config["transport"] == "stdio":
            from botical.tools.mcp_stdio import StdioServer

            if workspace is None:
                raise ToolFailure(
                    "This project has no workspace directory (set the project's path)"
                )
            env = minimal_env(workspace)
            env.update({name: render(v, {}, secret=secret) for name, v in config["env"].items()})
            connection.process = StdioServer(config["argv"], workspace, env, max_message)
            return connection.process.streams()
        from botical.tools.mcp_http import http_transport

        headers = {name: render(v, {}, secret=secret) for name, v in config["headers"].items()}
        return http_transport(config["url"], headers, HTTP_TIMEOUT, max_message)

    def _failed(self, connection: Connection, failure: str) -> str:
        """Stop a server that did not start; remember why (its first failure) for RETRY_AFTER
        seconds, so that listings and calls meanwhile fail at once. Return that reason."""
        if connection.failure is None:
            connection.failure = failure
            self._failures[connection.key] = (time.monotonic(), failure)
            if len(self._failures) > MAX_FAILURES:
                self._failures.pop(next(iter(self._failures)))
        self._stop(connection)
        return connection.failure

    def _stop(self, connection: Connection) -> None:
        connection.dead = True
        connection.stop.set()  # a running server: its task leaves the SDK client and ends
        if not connection.ready.done() and connection.task is not None:
            connection.task.cancel()  # one still starting
        if connection.idle_timer is not None:
            connection.idle_timer.cancel()
        for record_id, live in list(self._connections.items()):
            if live is connection:
                del self._connections[record_id]

    def _touch(self, connection: Connection) -> None:
        """Restart the idle timer of a server nobody is calling."""
        if connection.idle_timer is not None:
            connection.idle_timer.cancel()
            connection.idle_timer = None
        idle = self._limits.mcp_idle_timeout
        if idle and not connection.busy and not connection.dead:
            loop = asyncio.get_running_loop()
            connection.idle_timer = loop.call_later(idle, self._stop, connection)
        connection.last_used = time.monotonic()

    def _make_room(self) -> None:
        """Stop the least recently used idle server when the node runs as many as it may."""
        limit = self._limits.mcp_max_servers
        if len(self._connections) < limit:
            return
        idle = [c for c in self._connections.values() if not c.busy and c.ready.done()]
        if not idle:
            raise ToolFailure(f"Too many MCP servers are running on this server (at most {limit})")
        self._stop(min(idle, key=lambda c: c.last_used))

    async def _call_failure(
        self, connection: Connection, remote: str, exc: Exception, timeout: int
    ) -> str:
        code = getattr(exc, "code", None)
        if isinstance(exc, TimeoutError) or code == _REQUEST_TIMEOUT:
            return f"MCP tool {remote!r} of {connection.server!r} timed out after {timeout}s"
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if code is not None and code != _CONNECTION_CLOSED and message != "Session terminated":
            return f"MCP server {connection.server!r} refused the call of {remote!r}: {message}"
        self._stop(connection)  # gone: the next call starts it again
        why = await connection.why_stopped() if code == _CONNECTION_CLOSED else message
        return f"MCP server {connection.server!r} stopped during the call of {remote!r}: {why}"

    def _tool(self, record: dict[str, Any], remote: RemoteTool) -> Tool:
        validator = Draft202012Validator(
            remote.parameters,
            registry=referencing.Registry(),  # never fetch a remote $ref
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return Tool(
            remote.name,
            remote.description,
            functools.partial(self._execute, record["id"], remote.remote),
            parameters=remote.parameters,
            needs_exec=record["config"]["transport"] == "stdio",
            validate_args=functools.partial(check_arguments, validator),
            source="custom",
            details={key: record[key] for key in ("id", "kind", "config", "enabled")},
        )

    async def _execute(
        self, record_id: str, remote: str, ctx: ToolContext, args: dict[str, Any]
    ) -> ToolResult:
        # The record as it is now: a run that started before a change or a removal must not
        # bring the old server back.
        try:
            record = await ctx.services.custom_tools.get(record_id)
        except NotFound:
            raise ToolFailure("This MCP server was removed from the project") from None
        if record["kind"] != "mcp":
            raise ToolFailure(f"{record['name']!r} is no longer an MCP server")
        if not record["enabled"]:
            raise ToolFailure(f"The MCP server {record['name']!r} is disabled")
        return await self.call(record, ctx.workspace, remote, args)


_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001


def _key(record: dict[str, Any], workspace: Path | None) -> tuple[str, ...]:
    """What a running server was started from: a change to any of it needs a new one."""
    where = str(workspace) if record["config"]["transport"] == "stdio" else ""
    return (record["id"], str(record["updatedAt"]), where)


async def _stopped_or_gone(connection: Connection) -> None:
    """Wait until the pool stops the server, or (stdio) its process ends."""
    waits = [asyncio.ensure_future(connection.stop.wait())]
    if connection.process is not None:
        waits.append(asyncio.ensure_future(connection.process.ended.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _could_not_start(server: str, why: str) -> str:
    return f"MCP server {server!r} could not start: {why}"


async def _start_failure(connection: Connection, exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # the SDK's task groups
        exc = exc.exceptions[0]
    if isinstance(exc, ToolFailure):
        return str(exc)
    if (
        isinstance(exc, OSError)
        and connection.process is not None
        and connection.process.pid is None
    ):
        return f"cannot run {connection.process.argv[0]!r}: {exc.strerror or exc}"
    if getattr(exc, "code", None) == _CONNECTION_CLOSED:
        return await connection.why_stopped()
    return f"{type(exc).__name__}: {exc}"
