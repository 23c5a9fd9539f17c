"""Small REST helpers for the handler tests: projects and members are set up over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from botical.testing.wsclient import WsClient, WsError


async def new_project(owner: Any, **body: Any) -> str:
    """Create a project owned by `owner`; return its id."""
    created = await owner.api.post("/api/projects", {"name": "P", **body})
    assert created.status == 201, created.body
    return created.body["id"]


async def add_member(owner: Any, project_id: str, person: Any, role: str) -> None:
    added = await owner.api.post(
        f"/api/projects/{project_id}/members", {"userId": person.id, "role": role}
    )
    assert added.status == 201, added.body


async def fails(ws: WsClient, method: str, code: str, **params: Any) -> WsError:
    """Call `method` and assert it fails with `code`; return the error."""
    with pytest.raises(WsError) as caught:
        await ws.request(method, **params)
    assert caught.value.code == code, (caught.value.code, caught.value.message)
    return caught.value


async def run_finished(ws: WsClient, run_id: str) -> dict[str, Any]:
    """Wait for the final `agent.status_changed` of a run (the session must be subscribed)."""
    return await ws.next_event("agent.status_changed", runId=run_id, status="idle")
