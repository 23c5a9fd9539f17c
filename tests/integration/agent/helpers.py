"""Helpers for the agent-core tests: a `Chat` driving one session, and a recording plugin.

`Chat` sends over real HTTP and waits for bus events; it never sleeps. `Recorder` is a plugin
registering providers that remember every ModelRequest they receive (modules that need it
override `botical_plugins`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botical
from botical.agent.providers.base import Finish, ModelRequest, TextDelta, ToolCallRequest
from botical.agent.providers.echo import EchoProvider
from botical.errors import ProviderError
from botical.testing import Response

FAIL = "/fail"  # the `rec` provider streams one delta, then raises ProviderError
DEEP_CALL = "/deep"  # the `rec` provider calls `read` with arguments nested 100 levels deep


class Recorder:
    """A plugin: `rec` answers "answer N"; `rececho` is echo. Both record their requests."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    @botical.hookimpl
    def botical_register_providers(self, register: Any) -> None:
        requests = self.requests

        class RecordingProvider:
            name = "rec"

            def __init__(self, config: Any) -> None:
                self.config = config

            async def stream(self, request: ModelRequest):
                requests.append(request)
                if request.messages[-1].content == FAIL:
                    yield TextDelta("partial ")
                    raise ProviderError("Rate limit reached", details={"kind": "rate_limit"})
                if request.messages[-1].content == DEEP_CALL:
                    arguments: dict[str, Any] = {"path": "a"}
                    for _ in range(100):
                        arguments = {"path": arguments}
                    yield ToolCallRequest("call_deep", "read", arguments)
                    yield Finish("tool_calls")
                    return
                yield TextDelta("answer ")
                yield TextDelta(str(len(requests)))
                yield Finish("stop", input_tokens=3, output_tokens=2)

        class RecordingEcho(EchoProvider):
            name = "rececho"

            async def stream(self, request: ModelRequest):
                requests.append(request)
                async for event in super().stream(request):
                    yield event

        register(RecordingProvider)
        register(RecordingEcho)


@dataclass
class Chat:
    """One user's session in a project whose workspace is a temporary directory."""

    person: Any
    project: dict[str, Any]
    session: dict[str, Any]
    workspace: Path
    events: Any

    @property
    def sid(self) -> str:
        return self.session["id"]

    async def send(self, content: str, **extra: Any) -> Response:
        return await self.person.api.post(
            f"/api/sessions/{self.sid}/messages", {"content": content, **extra}
        )

    async def started(self, content: str, **extra: Any) -> str:
        """Send a message that must be accepted; return its run id."""
        sent = await self.send(content, **extra)
        assert sent.status == 202, sent.body
        return sent.body["runId"]

    async def finished(self, run_id: str, status: str = "idle") -> dict[str, Any]:
        """Wait until the run has ended (final agent status); return its assistant message."""
        await self.events.wait("agent.status_changed", runId=run_id, status=status)
        return next(
            m for m in await self.messages() if m["runId"] == run_id and m["role"] == "assistant"
        )

    async def answer(self, content: str, **extra: Any) -> dict[str, Any]:
        """Send a message and return the stored assistant answer once the run is over."""
        return await self.finished(await self.started(content, **extra))

    async def approval(self, run_id: str) -> dict[str, Any]:
        """The approval the run asks for."""
        event = await self.events.wait("tool.approval_required", approval__runId=run_id)
        return event.data["approval"]

    async def approve(self, run_id: str, scope: str = "once") -> Response:
        approval = await self.approval(run_id)
        return await self.person.api.post(
            f"/api/approvals/{approval['id']}/approve", {"scope": scope}
        )

    async def messages(self) -> list[dict[str, Any]]:
        listed = await self.person.api.get(f"/api/sessions/{self.sid}/messages?limit=200")
        assert listed.status == 200, listed.body
        return listed.body["items"]

    async def new_session(self, **body: Any) -> Chat:
        created = await self.person.api.post(f"/api/projects/{self.project['id']}/sessions", body)
        assert created.status == 201, created.body
        return Chat(self.person, self.project, created.body, self.workspace, self.events)


def parts(message: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if p["type"] == type_]


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in parts(message, "text"))


async def open_chat(person: Any, workspace: Path, events: Any, **session: Any) -> Chat:
    """A project on `workspace` owned by `person`, and a new session in it."""
    project = await person.api.post("/api/projects", {"name": "P", "path": str(workspace)})
    assert project.status == 201, project.body
    created = await person.api.post(f"/api/projects/{project.body['id']}/sessions", session)
    assert created.status == 201, created.body
    return Chat(person, project.body, created.body, workspace, events)
