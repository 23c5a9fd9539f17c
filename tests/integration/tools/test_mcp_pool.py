"""The MCP server pool on its own (botical/tools/mcp.py), with real server processes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from botical.config import ToolSettings
from botical.tools.base import ToolFailure
from botical.tools.mcp import McpServers
from tests.integration.tools.mcp_helpers import alive, stdio_server


def record(**config):
    server = stdio_server(**config)
    return {
        **server,
        "id": "tool_1",
        "enabled": True,
        "updatedAt": 1,
        "config": {"env": {}, **server["config"]},
    }


async def started_pid(fifo: Path) -> int:
    """The pid the server writes into `fifo` once it runs (reading blocks until then)."""
    return int(await asyncio.wait_for(asyncio.to_thread(fifo.read_text), 10))


@pytest.mark.gen_test(timeout=30)
async def test_close_stops_a_server_that_is_still_starting(tmp_path):
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    silent = record(argv=["/bin/sh", "-c", f"echo $$ > {fifo}; exec sleep 60"])
    servers = McpServers(ToolSettings(mcp_start_timeout=60), tmp_path)
    listing = asyncio.ensure_future(servers.tools(silent, tmp_path))
    pid = await started_pid(fifo)
    await servers.close()
    assert not alive(pid)
    assert await listing == []  # the listing ends too, with no tools


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_listings_share_one_server_and_a_closed_pool_starts_none(tmp_path):
    servers = McpServers(ToolSettings(), tmp_path)
    demo = record()
    first, second = await asyncio.gather(
        servers.tools(demo, tmp_path), servers.tools(demo, tmp_path)
    )
    assert [t.name for t in first] == [t.name for t in second] != []
    pids = set()
    for _ in range(2):
        result = await servers.call(demo, tmp_path, "whoami", {})
        pids.add(json.loads(result.output)["pid"])
    (pid,) = pids
    await servers.close()
    assert not alive(pid)
    assert await servers.tools(demo, tmp_path) == []
    with pytest.raises(ToolFailure, match="shutting down"):
        await servers.call(demo, tmp_path, "whoami", {})
