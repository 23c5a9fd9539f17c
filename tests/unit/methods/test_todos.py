"""todos.get and todos.update over a real socket."""

import pytest

from tests.unit.methods.helpers import add_member, fails, new_project

PLAN = [
    {"content": "Plan", "activeForm": "Planning", "status": "in_progress"},
    {"content": "Ship", "status": "pending"},
]


@pytest.mark.gen_test
async def test_update_replaces_the_list_and_subscribers_get_todo_updated(make_user, connect):
    alice = await make_user("alice")
    ws = await connect(alice)
    session = await ws.request("sessions.create", projectId=await new_project(alice))
    await ws.subscribe(f"session:{session['id']}")
    updated = await ws.request("todos.update", sessionId=session["id"], todos=PLAN)
    assert [t["status"] for t in updated["items"]] == ["in_progress", "pending"]
    event = await ws.next_event("todo.updated", sessionId=session["id"])
    assert event["data"]["todos"] == updated["items"]
    assert await ws.request("todos.get", sessionId=session["id"]) == updated


@pytest.mark.gen_test
async def test_update_refuses_two_items_in_progress(make_user, connect):
    alice = await make_user("alice")
    ws = await connect(alice)
    session = await ws.request("sessions.create", projectId=await new_project(alice))
    both = [dict(t, status="in_progress") for t in PLAN]
    error = await fails(ws, "todos.update", "VALIDATION_ERROR", sessionId=session["id"], todos=both)
    assert "todos" in error.details


@pytest.mark.gen_test
async def test_a_viewer_may_get_but_not_update(make_user, connect):
    alice, bob = await make_user("alice"), await make_user("bob")
    project_id = await new_project(alice)
    await add_member(alice, project_id, bob, "viewer")
    session = await (await connect(alice)).request("sessions.create", projectId=project_id)
    viewer = await connect(bob)
    assert (await viewer.request("todos.get", sessionId=session["id"]))["items"] == []
    await fails(viewer, "todos.update", "FORBIDDEN", sessionId=session["id"], todos=[])
