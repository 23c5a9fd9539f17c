"""An MCP tool's result (a `CallToolResult`) as the text result Botical gives the model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botical.tools.base import ToolResult


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
