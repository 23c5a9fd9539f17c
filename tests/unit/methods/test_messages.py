"""messages.* over a real socket: send answers at once, list, cancel, retry, one run per session."""

from __future__ import annotations

import pytest

from botical.ids import new_id
from tests.unit.methods.helpers import add_member, fails, new_project, run_finished

SLOW = "/slow " + "word " * 60  # about three seconds of streaming: long enough to act mid-run


async def _session(make_user, connect, name="alice"):
    """An owner's socket subscribed to a fresh session; returns (person, ws, session id)."""
    person = await make_user(name)
    project_id = await new_project(person)
    ws = await connect(person)
    session = await ws.request("sessions.create", projectId=project_id)
    await ws.subscribe(f"session:{session['id']}")
    return person, ws, session["id"], project_id


def _text(message):
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")


@pytest.mark.gen_test
async def test_send_answers_with_the_message_and_run_while_the_run_goes_on(make_user, connect):
    alice, ws, sid, _ = await _session(make_user, connect)
    sent = await ws.request("messages.send", sessionId=sid, content=SLOW)
    assert set(sent) == {"message", "runId"}
    message = sent["message"]
    assert (message["role"], message["sessionId"], message["runId"], message["createdBy"]) == (
        "user",
        sid,
        sent["runId"],
        alice.id,
    )
    assert _text(message) == SLOW
    sync = await ws.request("sessions.sync", sessionId=sid)
    assert sync["status"] == {"status": "running", "runId": sent["runId"]}
    await ws.request("messages.cancel", sessionId=sid)
    await run_finished(ws, sent["runId"])


@pytest.mark.gen_test
async def test_the_answer_streams_as_deltas_without_the_whole_text(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    sent = await ws.request("messages.send", sessionId=sid, content="one two three four")
    await run_finished(ws, sent["runId"])
    deltas = [
        f["data"] for f in ws.frames if f.get("event") == "part.updated" and "delta" in f["data"]
    ]
    assert "".join(d["delta"] for d in deltas) == "one two three four"
    assert len(deltas) > 1
    assert all("text" not in d["part"] for d in deltas)


@pytest.mark.gen_test
async def test_a_second_send_while_running_is_a_conflict(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    first = await ws.request("messages.send", sessionId=sid, content=SLOW)
    await fails(ws, "messages.send", "CONFLICT", sessionId=sid, content="me too")
    await fails(ws, "messages.retry", "CONFLICT", sessionId=sid)
    assert (await ws.request("sessions.sync", sessionId=sid))["status"]["runId"] == first["runId"]
    await ws.request("messages.cancel", sessionId=sid)
    await run_finished(ws, first["runId"])
    listed = await ws.request("messages.list", sessionId=sid)
    assert [m["role"] for m in listed["items"]] == ["user", "assistant"]


@pytest.mark.gen_test
async def test_list_pages_oldest_first(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    for content in ("first", "second"):
        sent = await ws.request("messages.send", sessionId=sid, content=content)
        await run_finished(ws, sent["runId"])
    everything = await ws.request("messages.list", sessionId=sid)
    items = everything["items"]
    assert [(m["role"], _text(m)) for m in items] == [
        ("user", "first"),
        ("assistant", "first"),
        ("user", "second"),
        ("assistant", "second"),
    ]
    assert everything["nextCursor"] is None
    page = await ws.request("messages.list", sessionId=sid, limit=3)
    assert [m["id"] for m in page["items"]] == [m["id"] for m in items[:3]]
    rest = await ws.request("messages.list", sessionId=sid, limit=3, cursor=page["nextCursor"])
    assert ([m["id"] for m in rest["items"]], rest["nextCursor"]) == ([items[3]["id"]], None)
    after = await ws.request("messages.list", sessionId=sid, after=items[1]["id"])
    assert [m["id"] for m in after["items"]] == [items[2]["id"], items[3]["id"]]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("params", "field"),
    [({"after": "sess_x"}, "after"), ({"limit": 500}, "limit"), ({"cursor": "!!"}, "cursor")],
)
async def test_list_rejects_bad_params(make_user, connect, params, field):
    _, ws, sid, _ = await _session(make_user, connect)
    error = await fails(ws, "messages.list", "VALIDATION_ERROR", sessionId=sid, **params)
    assert field in error.details


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"content": ""}, "content"),
        ({}, "content"),
        ({"content": "hi", "agent": "nobody"}, "agent"),
        ({"content": "hi", "model": "nosuchprovider"}, "model"),
        ({"content": "hi", "extra": 1}, "extra"),
    ],
)
async def test_send_rejects_bad_params(make_user, connect, params, field):
    _, ws, sid, _ = await _session(make_user, connect)
    error = await fails(ws, "messages.send", "VALIDATION_ERROR", sessionId=sid, **params)
    assert field in error.details
    assert (await ws.request("messages.list", sessionId=sid))["items"] == []


@pytest.mark.gen_test
async def test_the_same_idempotency_key_sends_once(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    first = await ws.request("messages.send", sessionId=sid, content="hi", idempotencyKey="k1")
    await run_finished(ws, first["runId"])
    again = await ws.request("messages.send", sessionId=sid, content="hi", idempotencyKey="k1")
    assert (again["runId"], again["message"]["id"]) == (first["runId"], first["message"]["id"])
    listed = await ws.request("messages.list", sessionId=sid)
    assert [m["role"] for m in listed["items"]] == ["user", "assistant"]


@pytest.mark.gen_test
async def test_cancel_stops_the_run(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    sent = await ws.request("messages.send", sessionId=sid, content=SLOW)
    await ws.next_event("part.updated", part__type="text")
    cancelled = await ws.request("messages.cancel", sessionId=sid)
    assert cancelled == {"cancelled": True, "runId": sent["runId"]}
    await run_finished(ws, sent["runId"])
    answer = (await ws.request("messages.list", sessionId=sid))["items"][-1]
    assert (answer["role"], answer["status"], answer["runId"]) == (
        "assistant",
        "cancelled",
        sent["runId"],
    )
    assert SLOW.startswith("/slow " + _text(answer))
    assert len(_text(answer)) < len(SLOW) - len("/slow ")


@pytest.mark.gen_test
async def test_cancel_with_nothing_running(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    assert await ws.request("messages.cancel", sessionId=sid) == {"cancelled": False, "runId": None}


@pytest.mark.gen_test
async def test_retry_answers_the_last_message_again(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    first = await ws.request("messages.send", sessionId=sid, content="again please")
    await run_finished(ws, first["runId"])
    retried = await ws.request("messages.retry", sessionId=sid)
    assert set(retried) == {"runId"}
    assert retried["runId"] != first["runId"]
    await run_finished(ws, retried["runId"])
    items = (await ws.request("messages.list", sessionId=sid))["items"]
    assert [(m["role"], m["runId"], m["status"]) for m in items] == [
        ("user", first["runId"], "completed"),
        ("assistant", first["runId"], "completed"),  # kept: an older version of the answer
        ("assistant", retried["runId"], "completed"),
    ]
    answers = [items[1]["id"], items[2]["id"]]
    assert [m["parentId"] for m in items[1:]] == [first["message"]["id"]] * 2
    assert [m["versions"] for m in items[1:]] == [
        {"index": 1, "count": 2, "ids": answers},
        {"index": 2, "count": 2, "ids": answers},
    ]
    assert _text(items[2]) == "again please"
    user_turns = [m for m in items if m["role"] == "user"]
    assert len(user_turns) == 1  # retry never duplicates the user's message
    shown = await ws.request("sessions.get", sessionId=sid, includeMessages=True)
    assert [m["id"] for m in shown["messages"]] == [first["message"]["id"], answers[1]]


@pytest.mark.gen_test
async def test_retry_a_named_message(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    runs = []
    for content in ("first", "second"):
        sent = await ws.request("messages.send", sessionId=sid, content=content)
        runs.append(sent)
        await run_finished(ws, sent["runId"])
    retried = await ws.request("messages.retry", sessionId=sid, messageId=runs[0]["message"]["id"])
    await run_finished(ws, retried["runId"])
    shown = await ws.request("sessions.get", sessionId=sid, includeMessages=True)
    assert [(m["role"], _text(m)) for m in shown["messages"]] == [
        ("user", "first"),
        ("assistant", "first"),
    ]
    assert [m["versions"]["count"] for m in shown["messages"]] == [1, 2]
    items = (await ws.request("messages.list", sessionId=sid))["items"]
    assert len(items) == 5  # the second exchange is kept below the first answer's old version


@pytest.mark.gen_test
async def test_retry_with_nothing_to_retry(make_user, connect):
    _, ws, sid, _ = await _session(make_user, connect)
    await fails(ws, "messages.retry", "NOT_FOUND", sessionId=sid)
    await fails(ws, "messages.retry", "NOT_FOUND", sessionId=sid, messageId=new_id("msg"))
    error = await fails(ws, "messages.retry", "VALIDATION_ERROR", sessionId=sid, messageId="x")
    assert "messageId" in error.details
    sent = await ws.request("messages.send", sessionId=sid, content="retry works after")
    await run_finished(ws, sent["runId"])


@pytest.mark.gen_test
async def test_a_viewer_reads_but_cannot_send_cancel_or_retry(make_user, connect):
    alice, owner_ws, sid, project_id = await _session(make_user, connect)
    sent = await owner_ws.request("messages.send", sessionId=sid, content="hello")
    await run_finished(owner_ws, sent["runId"])
    viewer = await make_user("victor")
    await add_member(alice, project_id, viewer, "viewer")
    ws = await connect(viewer)
    assert len((await ws.request("messages.list", sessionId=sid))["items"]) == 2
    await fails(ws, "messages.send", "FORBIDDEN", sessionId=sid, content="mine")
    await fails(ws, "messages.cancel", "FORBIDDEN", sessionId=sid)
    await fails(ws, "messages.retry", "FORBIDDEN", sessionId=sid)
    assert len((await ws.request("messages.list", sessionId=sid))["items"]) == 2
