"""An MCP server as a child process, spoken to over its stdin and stdout (the SDK's `Transport`).

The SDK has a stdio transport of its own; this one exists for three things Botical promises of
every command it runs: the exact minimal environment (the SDK's adds the server's LOGNAME,
SHELL and USER), a bound on what a server may send (the SDK's buffers a line of any length),
and the end of the server's stderr kept for the error that says why it stopped. The child runs
in its own process group, so stopping it stops whatever it started. Imported only when a
server starts: the `mcp` SDK is an optional extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import mcp.types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

STDERR_TAIL = 1000  # characters of the server's stderr kept for error messages
EXIT_GRACE = 2.0  # seconds a server has to exit once its stdin is closed, then again after TERM


class StdioServer:
    """One server process and the streams the SDK's client session reads and writes."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], max_message: int) -> None:
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.max_message = max_message
        self.pid: int | None = None
        self.problem = ""  # why the server stopped, when Botical knows better than its exit code
        self.ended = asyncio.Event()  # set when the server's output has ended
        self.stopping: asyncio.Future[None] | None = None  # the stop, once begun
        self._stderr = b""
        self._proc: asyncio.subprocess.Process | None = None

    async def stopped_because(self) -> str:
        """Why the server is gone: what Botical saw, its exit status and the end of its stderr."""
        proc = self._proc
        if proc is not None:  # its output has ended: its exit status follows in a moment
            await _exited(proc, EXIT_GRACE)
        reason = self.problem
        if not reason and proc is not None and proc.returncode is not None:
            reason = f"it exited with status {proc.returncode}"
        reason = reason or "it closed its output"
        tail = self._stderr.decode("utf-8", errors="replace").strip()[-STDERR_TAIL:]
        return f"{reason}; its stderr ends with:\n{tail}" if tail else reason

    @contextlib.asynccontextmanager
    async def streams(
        self,
    ) -> AsyncIterator[
        tuple[
            MemoryObjectReceiveStream[SessionMessage | Exception],
            MemoryObjectSendStream[SessionMessage],
        ]
    ]:
        """Start the process; yield (messages from it, messages to it); stop it on the way out."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: stopping it stops its children too
            limit=self.max_message,  # readline() refuses a longer line instead of buffering it
        )
        self._proc, self.pid = proc, proc.pid
        incoming_tx, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outgoing, outgoing_rx = anyio.create_memory_object_stream[SessionMessage](0)
        pumps = [
            asyncio.create_task(self._read(proc, incoming_tx)),
            asyncio.create_task(self._write(proc, outgoing_rx)),
            asyncio.create_task(self._read_stderr(proc)),
        ]
        try:
            yield incoming, outgoing
        finally:
            # Shielded: a cancelled owner must still leave no process behind.
            self.stopping = asyncio.ensure_future(self._stop(proc, pumps))
            await asyncio.shield(self.stopping)

    async def _read(
        self,
        proc: asyncio.subprocess.Process,
        sink: MemoryObjectSendStream[SessionMessage | Exception],
    ) -> None:
        assert proc.stdout is not None
        try:
            await self._pump(proc.stdout, proc, sink)
        finally:
            self.ended.set()

    async def _pump(
        self,
        stdout: asyncio.StreamReader,
        proc: asyncio.subprocess.Process,
        sink: MemoryObjectSendStream[SessionMessage | Exception],
    ) -> None:
        async with sink:
            while True:
                try:
                    line = await stdout.readline()
                except ValueError:  # a line over the limit: stop the server rather than grow
                    self.problem = f"it sent a message over {self.max_message} bytes"
                    _signal_group(proc, signal.SIGKILL)
                    return
                if not line:
                    return  # end of output: the session sees the connection close
                if line.strip():
                    try:
                        await sink.send(_parse(line))
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        return

    async def _write(
        self, proc: asyncio.subprocess.Process, source: MemoryObjectReceiveStream[SessionMessage]
    ) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(ConnectionError, OSError, anyio.ClosedResourceError):
            async with source:
                async for item in source:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                    proc.stdin.write(data.encode() + b"\n")
                    await proc.stdin.drain()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await proc.stderr.read(4096):
                self._stderr = (self._stderr + chunk)[-4 * STDERR_TAIL :]

    async def _stop(
        self, proc: asyncio.subprocess.Process, pumps: list[asyncio.Task[None]]
    ) -> None:
        """Close stdin and give the server a moment (the MCP shutdown), then TERM, then KILL."""
        if proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                proc.stdin.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if await _exited(proc, EXIT_GRACE):
                break
            _signal_group(proc, sig)
        # A child of the server may still hold the pipes open: waiting for them is bounded.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), EXIT_GRACE)
        for pump in pumps:
            pump.cancel()
        _signal_group(proc, signal.SIGKILL)  # whatever of its group is left


async def _exited(proc: asyncio.subprocess.Process, timeout: float) -> bool:
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        return False
    return True


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _parse(line: bytes) -> SessionMessage | Exception:
    """One line as a JSON-RPC message; a malformed one is handed to the session as an error."""
    try:
        return SessionMessage(mcp.types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        return exc
