"""Helpers for the MCP tests: the servers of mcp_servers/ as custom-tool records, and waiting
for a process to end (a pidfd, so nothing polls or sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

SERVERS = Path(__file__).parent / "mcp_servers"


def stdio_server(name: str = "demo", script: str = "demo.py", **config: Any) -> dict[str, Any]:
    """A custom tool of kind mcp running one of the test servers over stdio."""
    argv = [sys.executable, str(SERVERS / script)]
    return {
        "name": name,
        "description": f"{name}: a test MCP server",
        "kind": "mcp",
        "config": {"transport": "stdio", "argv": argv, "timeout": 10, **config},
    }


def http_server(url: str, name: str = "remote", **config: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "mcp",
        "config": {"transport": "http", "url": url, **config},
    }


def output_json(result: dict[str, Any]) -> Any:
    assert result["isError"] is False, result
    return json.loads(result["output"])


async def exited(pid: int, timeout: float = 10) -> None:
    """Return once process `pid` has ended (TimeoutError if it does not within `timeout`)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        await asyncio.wait_for(gone, timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.asynccontextmanager
async def http_mcp_server() -> AsyncIterator[str]:
    """mcp_servers/http_demo.py as a subprocess; yield its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVERS / "http_demo.py"),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
