"""What an MCP server tells Botical: its tools, under Botical's names, and its results, as the
text the model gets."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botical.services.tool_checks import check_parameters
from botical.tools.base import ToolResult

log = logging.getLogger(__name__)
MAX_NAME = 64  # Botical's tool names: approvals, agent rules and tool lists hold 64 characters
REMOTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # what the MCP specification recommends
MAX_TOOLS = 256  # tools taken from one server; the rest are ignored
MAX_PAGES = 20  # pages of tools/list followed
MAX_DESCRIPTION = 4000


def tool_name(server: str, remote: str) -> str:
    """`mcp.<server>.<tool>`; a name that is too long or has other characters is cut and ends
    with a hash of the server's own name, so it stays unique and within 64 characters."""
    name = f"mcp.{server}.{remote}"
    if REMOTE_NAME.match(remote) and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(remote.encode()).hexdigest()[:8]
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", remote)
    return f"mcp.{server}.{clean}"[: MAX_NAME - len(digest) - 1] + "_" + digest


@dataclass(frozen=True)
class RemoteTool:
    """A tool as its server described it, under its Botical name."""

    name: str
    remote: str
    description: str
    parameters: dict[str, Any]


async def list_tools(client: Any, server: str) -> list[RemoteTool]:
    """Every usable tool of the server (bounded), under its Botical name."""
    found: dict[str, RemoteTool] = {}
    cursor = None
    for _ in range(MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            remote = _remote_tool(server, tool)
            if remote is not None and remote.name not in found and len(found) < MAX_TOOLS:
                found[remote.name] = remote
        cursor = page.next_cursor
        if not cursor or len(found) >= MAX_TOOLS:
            break
    return list(found.values())


def _remote_tool(server: str, tool: Any) -> RemoteTool | None:
    schema = tool.input_schema
    problems = check_parameters(schema)
    if problems:
        log.warning("MCP server %s: tool %r skipped: %s", server, tool.name[:128], problems[0])
        return None
    description = (tool.description or tool.title or "")[:MAX_DESCRIPTION]
    return RemoteTool(tool_name(server, tool.name), tool.name, description, schema)


def as_tool_result(result: Any, cap: int, mask: Callable[[str], str]) -> ToolResult:
    """The result's content as text (structured content when there is no text), cut at `cap`
    bytes, secrets masked; an `isError` result is a tool error."""
    pieces = [_text(block) for block in result.content or ()]
    if not any(pieces) and result.structured_content is not None:
        pieces = [json.dumps(result.structured_content, ensure_ascii=False)]
    text = mask("\n".join(p for p in pieces if p))
    data = text.encode()
    truncated = len(data) > cap
    if truncated:
        text = data[:cap].decode("utf-8", errors="ignore") + "\n[output truncated]"
    return ToolResult(text, is_error=bool(result.is_error), metadata={"truncated": truncated})


def _text(block: Any) -> str:
    """One content block: text as it is; images, audio and binary resources described."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind} {block.mime_type}, {len(block.data) * 3 // 4} bytes, not shown]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return str(text)
        return f"[resource {resource.uri} ({resource.mime_type or 'binary'}), not shown]"
    if kind == "resource_link":
        return f"[resource link {block.uri}: {block.name}]"
    return f"[{kind or 'unknown'} content, not shown]"
