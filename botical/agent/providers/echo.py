"""The built-in `echo` model: offline and deterministic, for local use and tests.

- Any text is streamed back verbatim, one word (with its trailing space) per delta.
- `/tool NAME {json-args}` calls tool NAME with those arguments; after the result comes back,
  echo summarises it ("Tool NAME returned: ...") and stops.
- `/slow TEXT` streams TEXT with a short pause between deltas, so a client can cancel mid-stream.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from botical import jsonin
from botical.agent.providers.base import (
    Finish,
    ModelMessage,
    ModelRequest,
    ProviderConfig,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
)
from botical.errors import BoticalError
from botical.hookspecs import hookimpl

SLOW_DELAY = 0.05
SUMMARY_LIMIT = 2000
_WORDS = re.compile(r"\s*\S+\s*|\s+")
_TOOL = re.compile(r"^/tool\s+([A-Za-z0-9_.-]+)\s*(.*)$", re.S)


def split_deltas(text: str) -> list[str]:
    """The deltas echo streams for `text`: their concatenation is exactly `text`."""
    return _WORDS.findall(text) or [text]


def _summary(results: list[ModelMessage]) -> str:
    lines = []
    for result in results:
        verb = "failed" if result.is_error else "returned"
        output = result.content
        if len(output) > SUMMARY_LIMIT:
            output = output[:SUMMARY_LIMIT] + " [truncated]"
        lines.append(f"Tool {result.name} {verb}: {output}")
    return "\n".join(lines)


class EchoProvider:
    name = "echo"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._calls = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        messages = request.messages
        trailing = []
        for message in reversed(messages):
            if message.role != "tool":
                break
            trailing.append(message)
        if trailing:
            async for event in self._say(_summary(list(reversed(trailing))), 0):
                yield event
            return
        last = messages[-1].content if messages else ""
        match = _TOOL.match(last.strip())
        if match:
            yield self._tool_call(match.group(1), match.group(2))
            yield Finish("tool_calls", input_tokens=len(last.split()), output_tokens=1)
            return
        delay = 0.0
        if last.startswith("/slow "):
            last, delay = last[len("/slow ") :], SLOW_DELAY
        async for event in self._say(last, delay):
            yield event

    def _tool_call(self, name: str, raw: str) -> StreamEvent:
        try:
            args = jsonin.loads(raw, "Arguments") if raw.strip() else {}
        except BoticalError:
            args = {"_invalid_json": raw}
        self._calls += 1
        return ToolCallRequest(id=f"echo_call_{self._calls}", name=name, arguments=args)

    async def _say(self, text: str, delay: float) -> AsyncIterator[StreamEvent]:
        deltas = split_deltas(text)
        for delta in deltas:
            yield TextDelta(delta)
            await asyncio.sleep(delay)  # also yields to the loop between deltas
        yield Finish("stop", input_tokens=len(text.split()), output_tokens=len(deltas))


@hookimpl
def botical_register_providers(register) -> None:
    register(EchoProvider)
