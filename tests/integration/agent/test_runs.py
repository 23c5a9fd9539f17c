"""The run loop: cancel, one run per session, idempotent sends, step limit, sub-agents."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import parts, text_of

SLOW = "/slow " + "word " * 200


@pytest.mark.gen_test
async def test_cancel_mid_stream(chat, events):
    run_id = await chat.started(SLOW)
    await events.wait("part.updated", part__type="text")
    cancelled = await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    assert cancelled.body == {"cancelled": True, "runId": run_id}
    answer = await chat.finished(run_id)
    assert answer["status"] == "cancelled"
    assert 0 < len(text_of(answer)) < len(SLOW) - len("/slow ")
    assert [p["status"] for p in parts(answer, "text")] == ["cancelled"]  # not "completed"


@pytest.mark.gen_test
async def test_session_is_usable_after_cancel(chat, events):
    run_id = await chat.started(SLOW)
    await events.wait("part.updated", part__type="text")
    await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    await chat.finished(run_id)
    answer = await chat.answer("still here")
    assert (answer["status"], text_of(answer)) == ("completed", "still here")


@pytest.mark.gen_test
async def test_cancel_while_waiting_for_approval(chat, events):
    run_id = await chat.started('/tool write {"path": "a.txt", "content": "x"}')
    approval = await chat.approval(run_id)
    await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    resolved = await events.wait("tool.approval_resolved", approval__id=approval["id"])
    assert resolved.data["approval"]["status"] == "cancelled"
    answer = await chat.finished(run_id)
    assert (answer["status"], parts(answer, "tool_call")[0]["status"]) == (
        "cancelled",
        "cancelled",
    )


@pytest.mark.gen_test
async def test_cancel_without_a_run(chat):
    cancelled = await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    assert cancelled.body == {"cancelled": False, "runId": None}


@pytest.mark.gen_test
async def test_second_send_while_running_conflicts(chat, events):
    run_id = await chat.started(SLOW)
    second = await chat.send("me too")
    assert (second.status, second.error_code) == (409, "CONFLICT")
    await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    await chat.finished(run_id)
    assert [m["role"] for m in await chat.messages()] == ["user", "assistant"]


@pytest.mark.gen_test
async def test_idempotency_key_sends_once(chat, events):
    first = await chat.send("hello", idempotencyKey="k-1")
    await chat.finished(first.body["runId"])
    again = await chat.send("hello", idempotencyKey="k-1")
    assert again.status == 202, again.body
    assert (again.body["message"]["id"], again.body["runId"]) == (
        first.body["message"]["id"],
        first.body["runId"],
    )
    assert [m["role"] for m in await chat.messages()] == ["user", "assistant"]
    assert len(events.find("message.created", message__role="assistant")) == 1


@pytest.mark.gen_test
async def test_step_limit_ends_the_run(chat):
    (chat.workspace / "notes.txt").write_text("seven apples")
    created = await chat.person.api.post(
        f"/api/projects/{chat.project['id']}/agents", {"name": "brief", "maxSteps": 1}
    )
    assert created.status == 201, created.body
    answer = await chat.answer('/tool read {"path": "notes.txt"}', agent="brief")
    assert (answer["status"], answer["finishReason"]) == ("completed", "max_steps")
    assert [p["output"] for p in parts(answer, "tool_result")] == ["seven apples"]
    assert text_of(answer) == ""


@pytest.mark.gen_test
async def test_streamed_text_is_written_in_batches(botical_app, chat):
    words = " ".join(f"w{i}" for i in range(2000))
    before = botical_app.db.writes
    answer = await chat.answer(words)
    assert botical_app.db.writes - before < 50
    assert text_of(answer) == words


@pytest.mark.gen_test
async def test_task_runs_a_sub_agent_in_a_child_session(chat, events):
    run_id = await chat.started('/tool task {"prompt": "hello sub", "agent": "explore"}')
    await chat.approve(run_id)
    answer = await chat.finished(run_id)
    (result,) = parts(answer, "tool_result")
    assert (result["isError"], "hello sub" in result["output"]) == (False, True)
    children = [
        e.data["session"] for e in events.find("session.created", session__parentId=chat.sid)
    ]
    assert [(c["id"], c["agent"]) for c in children] == [
        (result["metadata"]["sessionId"], "explore")
    ]


@pytest.mark.gen_test(timeout=60)
async def test_cancel_right_after_send_closes_the_answer(chat):
    # a race: on PostgreSQL the cancel can land while the answer's row is being created
    for _ in range(50):
        session = await chat.new_session()
        run_id = await session.started(SLOW)
        await session.person.api.post(f"/api/sessions/{session.sid}/cancel", {})
        answer = await session.finished(run_id)
        assert answer["status"] == "cancelled"


@pytest.mark.gen_test(timeout=15)
async def test_cancel_stops_a_running_tool(chat, events):
    run_id = await chat.started('/tool bash {"command": "sleep 60"}')
    await chat.approve(run_id)
    await events.wait("agent.status_changed", runId=run_id, status="running_tool")
    cancelled = await chat.person.api.post(f"/api/sessions/{chat.sid}/cancel", {})
    assert cancelled.body["cancelled"] is True
    answer = await chat.finished(run_id, status="idle")
    assert (answer["status"], parts(answer, "tool_call")[0]["status"]) == (
        "cancelled",
        "cancelled",
    )
