"""Todo lists: written by the agent's tools and over REST, one list, every change announced."""

import json

import pytest

from tests.integration.agent.helpers import parts

PLAN = [
    {"content": "Read the code", "activeForm": "Reading the code", "status": "completed"},
    {"content": "Write the fix", "activeForm": "Writing the fix", "status": "in_progress"},
    {"content": "Run the tests", "status": "pending"},
]


@pytest.mark.gen_test
async def test_the_agent_writes_todos_without_approval_and_clients_see_them(chat):
    answer = await chat.answer("/tool todowrite " + json.dumps({"todos": PLAN}))
    assert [r["isError"] for r in parts(answer, "tool_result")] == [False]
    assert not chat.events.find("tool.approval_required")
    event = await chat.events.wait("todo.updated", sessionId=chat.sid)
    assert [t["content"] for t in event.data["todos"]] == [t["content"] for t in PLAN]
    listed = await chat.person.api.get(f"/api/sessions/{chat.sid}/todos")
    assert listed.body["items"] == event.data["todos"]
    assert listed.body["items"][2]["activeForm"] == ""


@pytest.mark.gen_test
async def test_todoread_returns_the_list_a_client_wrote(chat):
    put = await chat.person.api.put(f"/api/sessions/{chat.sid}/todos", {"todos": PLAN})
    assert put.status == 200, put.body
    answer = await chat.answer("/tool todoread {}")
    output = json.loads(parts(answer, "tool_result")[0]["output"])
    assert output == put.body["items"]


@pytest.mark.gen_test
async def test_replacing_publishes_the_full_list_each_time(chat):
    api = chat.person.api
    await api.put(f"/api/sessions/{chat.sid}/todos", {"todos": PLAN})
    await api.put(f"/api/sessions/{chat.sid}/todos", {"todos": PLAN[:1]})
    await api.put(f"/api/sessions/{chat.sid}/todos", {"todos": []})
    published = [len(e.data["todos"]) for e in chat.events.find("todo.updated")]
    assert published == [3, 1, 0]
    assert (await api.get(f"/api/sessions/{chat.sid}/todos")).body["items"] == []


@pytest.mark.gen_test
async def test_two_items_in_progress_are_refused_and_nothing_changes(chat):
    api = chat.person.api
    await api.put(f"/api/sessions/{chat.sid}/todos", {"todos": PLAN})
    both = [dict(t, status="in_progress") for t in PLAN[:2]]
    refused = await api.put(f"/api/sessions/{chat.sid}/todos", {"todos": both})
    assert refused.status == 400
    assert refused.error_code == "VALIDATION_ERROR"
    assert len((await api.get(f"/api/sessions/{chat.sid}/todos")).body["items"]) == 3
    answer = await chat.answer("/tool todowrite " + json.dumps({"todos": both}))
    assert parts(answer, "tool_result")[0]["isError"] is True
    assert len(chat.events.find("todo.updated")) == 1


@pytest.mark.gen_test
async def test_a_viewer_reads_todos_but_cannot_write_them(chat, make_user):
    viewer = await make_user("viewer")
    added = await chat.person.api.post(
        f"/api/projects/{chat.project['id']}/members", {"userId": viewer.id, "role": "viewer"}
    )
    assert added.status == 201
    await chat.person.api.put(f"/api/sessions/{chat.sid}/todos", {"todos": PLAN})
    assert len((await viewer.api.get(f"/api/sessions/{chat.sid}/todos")).body["items"]) == 3
    denied = await viewer.api.put(f"/api/sessions/{chat.sid}/todos", {"todos": []})
    assert denied.status == 403


@pytest.mark.gen_test
async def test_invalid_todo_bodies_name_the_field(chat):
    api = chat.person.api
    bad = await api.put(
        f"/api/sessions/{chat.sid}/todos", {"todos": [{"content": "x", "status": "doing"}]}
    )
    assert bad.status == 400
    assert "todos" in bad.body["error"]["details"]
