"""Tool names as model APIs accept them: `^[A-Za-z0-9_-]{1,64}$` (OpenAI allows 64 characters,
Anthropic 128, and neither a dot). Botical names MCP tools `mcp.<server>.<tool>`; on the wire
that is `mcp__<server>__<tool>`, other characters become `_`, and a name that is still too long
or taken by another tool of the request is cut and ends with a hash of the Botical name. The
mapping is made per request and undone on the calls the model sends back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from botical.agent.providers.base import ModelMessage, ModelRequest, ToolCallRequest

WIRE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_WIRE = 64
DIGEST = 8


def wire_name(name: str) -> str:
    """The name as sent to the model, before collisions are considered."""
    if WIRE_NAME.match(name):
        return name
    wire = re.sub(r"[^A-Za-z0-9_-]", "_", name.replace(".", "__")) or "tool"
    return wire if len(wire) <= MAX_WIRE else hashed(name, wire)


def hashed(name: str, wire: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:DIGEST]
    return f"{wire[: MAX_WIRE - DIGEST - 1]}_{digest}"


class WireNames:
    """The tool names of one request, both ways."""

    def __init__(self, request: ModelRequest) -> None:
        names = [tool.name for tool in request.tools]
        self._out: dict[str, str] = {name: name for name in names if WIRE_NAME.match(name)}
        taken = set(self._out)
        for name in names:
            if name not in self._out:
                wire = wire_name(name)
                if wire in taken:
                    wire = hashed(name, wire)
                self._out[name] = wire
                taken.add(wire)
        self._back = {wire: name for name, wire in self._out.items()}

    def outbound(self, request: ModelRequest) -> ModelRequest:
        """`request` with every tool name (tools and history) as the model sees it."""
        if all(name == wire for name, wire in self._out.items()) and not any(
            message.tool_calls or message.name for message in request.messages
        ):
            return request
        tools = tuple(dataclasses.replace(t, name=self._wire(t.name)) for t in request.tools)
        messages = tuple(self._message(m) for m in request.messages)
        return dataclasses.replace(request, tools=tools, messages=messages)

    def inbound(self, call: ToolCallRequest) -> ToolCallRequest:
        """A call from the model under the Botical name of its tool."""
        name = self._back.get(call.name, call.name)
        return call if name == call.name else dataclasses.replace(call, name=name)

    def _wire(self, name: str) -> str:
        return self._out.get(name) or wire_name(name)

    def _message(self, message: ModelMessage) -> ModelMessage:
        calls = tuple(dataclasses.replace(c, name=self._wire(c.name)) for c in message.tool_calls)
        name = self._wire(message.name) if message.name else message.name
        return dataclasses.replace(message, tool_calls=calls, name=name)
