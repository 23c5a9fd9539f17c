"""Usage and cost: each answer stores its tokens, model and cost (`[pricing]`); sessions and
projects give totals, over the socket and REST; a rolled-back answer still counts, a fork's
copies do not count twice."""

from __future__ import annotations

from typing import Any

import pytest

from botical.db import now_ms
from botical.testing.wsclient import WsClient
from tests.integration.ws_helpers import add_member, connect, new_project, new_session

ASK = '/tool write {"path": "a.txt", "content": "x"}'


@pytest.fixture
def botical_overrides() -> dict[str, Any]:
    # per million tokens: one unit per input token, two per output token
    return {"pricing": {"echo": {"input": 1_000_000.0, "output": 2_000_000.0}}}


async def _answered(ws: WsClient, sid: str, content: str, **params: Any) -> dict[str, Any]:
    sent = await ws.request("messages.send", sessionId=sid, content=content, **params)
    finished = await ws.next_event(
        "message.updated", timeout=20, message__runId=sent["runId"], message__role="assistant"
    )
    await ws.next_event("agent.status_changed", timeout=20, runId=sent["runId"], status="idle")
    return finished["data"]["message"]


def _usage(inputs: int, outputs: int) -> dict[str, Any]:
    return {
        "inputTokens": inputs,
        "outputTokens": outputs,
        "cachedTokens": 0,
        "cost": float(inputs + 2 * outputs),
    }


@pytest.mark.gen_test(timeout=60)
async def test_answers_sessions_and_projects_carry_usage_and_cost(botical_app, make_user):
    owner = await make_user("owner")
    project_id = await new_project(owner)
    ws = await connect(botical_app, owner.token)
    sid = await new_session(ws, project_id)
    await ws.subscribe(f"session:{sid}")
    # echo counts the words it was sent as input and the deltas it streams as output
    answer = await _answered(ws, sid, "one two three")
    assert (answer["model"], answer["usage"]) == ("echo", _usage(3, 3))
    updated = await ws.next_event("session.updated", session__id=sid)
    assert updated["data"]["session"]["usage"] == _usage(3, 3)
    await _answered(ws, sid, "four five")
    session = await ws.request("sessions.get", sessionId=sid)
    assert session["usage"] == _usage(5, 5)

    usage = await ws.request("projects.usage", projectId=project_id)
    assert usage == {
        "projectId": project_id,
        "since": None,
        "until": None,
        "answers": 2,
        **_usage(5, 5),
        "byModel": [{"model": "echo", "answers": 2, **_usage(5, 5)}],
    }
    over_rest = await owner.api.get(f"/api/projects/{project_id}/usage")
    assert over_rest.body == usage
    later = await owner.api.get(f"/api/projects/{project_id}/usage?since={now_ms() + 60_000}")
    assert (later.body["answers"], later.body["byModel"]) == (0, [])


@pytest.mark.gen_test(timeout=60)
async def test_a_rolled_back_run_still_counts_and_a_fork_does_not_count_twice(
    botical_app, make_user
):
    owner = await make_user("owner")
    project_id = await new_project(owner)
    ws = await connect(botical_app, owner.token)
    sid = await new_session(ws, project_id)
    await ws.subscribe(f"session:{sid}")
    await _answered(ws, sid, "kept")
    # a first step that ends (with its usage) in a tool call waiting for approval
    asking = await ws.request("messages.send", sessionId=sid, content=ASK)
    await ws.next_event("tool.approval_required", approval__runId=asking["runId"])
    instead = await _answered(ws, sid, "instead", ifBusy="rollback")
    totals = (await ws.request("sessions.get", sessionId=sid))["usage"]
    project = await ws.request("projects.usage", projectId=project_id)
    assert project["answers"] == 3  # the removed answer was paid for
    assert totals == {k: project[k] for k in totals}
    assert totals == _usage(1 + len(ASK.split()) + 1, 1 + 1 + 1)
    listed = (await ws.request("messages.list", sessionId=sid))["items"]
    assert asking["runId"] not in [m["runId"] for m in listed]

    fork = await ws.request("sessions.fork", sessionId=sid, messageId=instead["id"])
    assert fork["usage"] == _usage(0, 0)
    assert await ws.request("projects.usage", projectId=project_id) == project


@pytest.mark.gen_test(timeout=60)
async def test_project_usage_needs_access_to_the_project(botical_app, make_user):
    owner = await make_user("owner")
    viewer = await make_user("viewer")
    stranger = await make_user("stranger")
    project_id = await new_project(owner)
    await add_member(owner, project_id, viewer, "viewer")
    assert (await viewer.api.get(f"/api/projects/{project_id}/usage")).status == 200
    refused = await stranger.api.get(f"/api/projects/{project_id}/usage")
    assert (refused.status, refused.error_code) == (404, "NOT_FOUND")
    bad = await owner.api.get(f"/api/projects/{project_id}/usage?since=-1")
    assert (bad.status, bad.error_code) == (400, "VALIDATION_ERROR")
