"""Helpers for the custom-tool tests: define tools over REST, read a run's tool result."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tests.integration.agent.helpers import Chat, parts


@dataclass
class Remote:
    """The local HTTP server custom http tools call: its URL and the requests it got."""

    release: asyncio.Event
    url: str = ""
    requests: list[Any] = field(default_factory=list)


def schema(**properties: Any) -> dict[str, Any]:
    """An object schema with these properties, all required, nothing else allowed."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


STRING = {"type": "string"}


def command(name: str, argv: list[str], parameters: dict[str, Any], **extra: Any) -> dict:
    return {
        "name": name,
        "description": f"{name}: a test command",
        "parameters": parameters,
        "kind": "command",
        "config": {"argv": argv, "timeout": 10},
        **extra,
    }


def http(name: str, parameters: dict[str, Any], **config: Any) -> dict:
    return {
        "name": name,
        "description": f"{name}: a test request",
        "parameters": parameters,
        "kind": "http",
        "config": {"method": "GET", "timeout": 10, **config},
    }


async def define(person: Any, project_id: str, tool: dict[str, Any]) -> dict[str, Any]:
    """Create a custom tool that must be accepted; return it."""
    created = await person.api.post(f"/api/projects/{project_id}/tools", tool)
    assert created.status == 201, created.body
    return created.body


async def allowing(chat: Chat, *tools: str) -> Chat:
    """A new session of `chat` whose agent allows these tools without approval."""
    rules = [{"tool": name, "action": "allow"} for name in tools]
    created = await chat.person.api.post(
        f"/api/projects/{chat.project['id']}/agents", {"name": "auto", "rules": rules}
    )
    assert created.status == 201, created.body
    return await chat.new_session(agent="auto")


def call(tool: str, args: dict[str, Any]) -> str:
    """The echo model's message that makes it call `tool` with `args`."""
    return f"/tool {tool} {json.dumps(args)}"


def result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The one tool_result part of an answer."""
    (result,) = parts(answer, "tool_result")
    return result


def call_status(answer: dict[str, Any]) -> str:
    (tool_call,) = parts(answer, "tool_call")
    return tool_call["status"]
