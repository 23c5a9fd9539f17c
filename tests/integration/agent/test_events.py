"""A message produces the expected events, in order, on the bus; the stored rows match them."""

from __future__ import annotations

import pytest

from tests.integration.agent.helpers import parts, text_of

TEXT = "the quick brown fox"


def label(event) -> str:
    """A short name for an event of the run, enough to check the order."""
    data = event.data
    if event.name == "message.created":
        return f"message.created {data['message']['role']}"
    if event.name == "message.updated":
        return f"message.updated {data['message']['status']}"
    if event.name == "part.created":
        return f"part.created {data['part']['type']}"
    if event.name == "part.updated":
        return "delta" if "delta" in data else f"part.updated {data['part']['status']}"
    if event.name == "agent.status_changed":
        return f"status {data['status']}"
    return event.name


def session_events(events, session_id: str) -> list:
    return [e for e in events.events if e.session_id == session_id]


@pytest.mark.gen_test
async def test_events_arrive_in_order(chat, events):
    run_id = await chat.started(TEXT)
    await chat.finished(run_id)
    seen = [label(e) for e in session_events(events, chat.sid) if not e.name.startswith("session.")]
    assert seen == [
        "message.created user",
        "part.created text",
        "message.created assistant",
        "part.created step_start",
        "status thinking",
        "status streaming",
        "part.created text",
        *["delta"] * 4,
        "part.updated completed",
        "part.created step_finish",
        "message.updated completed",
        "status idle",
    ]


@pytest.mark.gen_test
async def test_deltas_add_up_and_carry_no_text(chat, events):
    await chat.finished(await chat.started(TEXT))
    deltas = [e.data for e in events.find("part.updated") if "delta" in e.data]
    assert "".join(d["delta"] for d in deltas) == TEXT
    assert all("text" not in d["part"] for d in deltas)


@pytest.mark.gen_test
async def test_final_events_hold_the_whole_answer(chat, events):
    await chat.finished(await chat.started(TEXT))
    final = events.find("part.updated", part__type="text", part__status="completed")
    assert [e.data["part"]["text"] for e in final] == [TEXT]
    done = events.find("message.updated", message__role="assistant")
    assert [(e.data["message"]["status"], e.data["message"]["finishReason"]) for e in done] == [
        ("completed", "stop")
    ]


@pytest.mark.gen_test
async def test_stored_messages_match_the_events(chat, events):
    answer = await chat.answer(TEXT)
    user, assistant = await chat.messages()
    assert (user["role"], text_of(user)) == ("user", TEXT)
    assert assistant["id"] == answer["id"]
    assert (assistant["status"], assistant["finishReason"], text_of(assistant)) == (
        "completed",
        "stop",
        TEXT,
    )
    streamed = events.find("part.created", part__type="text", part__messageId=assistant["id"])
    assert [p["id"] for p in parts(assistant, "text")] == [e.data["part"]["id"] for e in streamed]


@pytest.mark.gen_test
async def test_text_part_created_event_is_a_snapshot(chat, events):
    await chat.finished(await chat.started(TEXT))
    (created,) = events.find("part.created", part__type="text", part__status="streaming")
    assert created.data["part"]["text"] == ""


@pytest.mark.gen_test
async def test_tool_call_events_show_each_status(chat, events):
    run_id = await chat.started('/tool write {"path": "a.txt", "content": "x"}')
    await chat.approve(run_id)
    await chat.finished(run_id)
    calls = [
        e.data["part"]["status"]
        for e in events.events
        if e.name.startswith("part.") and e.data["part"]["type"] == "tool_call"
    ]
    assert calls == ["pending", "waiting_approval", "running", "completed"]
