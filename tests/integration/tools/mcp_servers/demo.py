"""A stdio MCP server for the tests: sums, failures, a crash, a slow tool, its environment."""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(reason: str) -> str:
    """Fail with `reason`."""
    raise ValueError(reason)


@server.tool()
def crash() -> str:
    """Exit the whole server in the middle of the call."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after `seconds`."""
    await anyio.sleep(seconds)
    return "finally"


@server.tool()
def whoami() -> dict:
    """The server's process id, directory and environment."""
    return {"pid": os.getpid(), "cwd": os.getcwd(), "env": dict(os.environ)}


@server.tool()
def big(size: int) -> str:
    """`size` characters of text."""
    return "x" * size


if __name__ == "__main__":
    server.run()
