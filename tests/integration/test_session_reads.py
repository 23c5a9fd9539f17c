"""`sessions.get` is served from the read cache while a session is unchanged: every change
(messages, answers, streamed text being stored, title, archive, usage) shows in the next read,
and a member who lost access is refused even though the read is cached."""

from __future__ import annotations

from typing import Any

import pytest

from botical.agent.stream import PartRecorder
from botical.testing.wsclient import WsError
from tests.integration.ws_helpers import (
    add_member,
    connect,
    new_project,
    new_session,
    run_ended,
    send,
    stored_answer,
    take_until,
    text_of,
)


def texts(session: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], text_of(m)) for m in session["messages"]]


@pytest.mark.gen_test(timeout=30)
async def test_every_change_shows_in_the_next_read(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token)
    project_id = await new_project(alice)
    session_id = await new_session(ws, project_id)
    await ws.subscribe(f"session:{session_id}")

    first = await ws.request("sessions.get", sessionId=session_id, includeMessages=True)
    assert (first["messages"], first["title"]) == ([], "t")
    assert await ws.request("sessions.get", sessionId=session_id, includeMessages=True) == first

    run_id = await send(ws, session_id, "hello there")
    await take_until(ws, run_ended(run_id))
    answered = await ws.request("sessions.get", sessionId=session_id, includeMessages=True)
    answer = await stored_answer(ws, session_id, run_id)
    assert texts(answered) == [("user", "hello there"), ("assistant", text_of(answer))]
    assert answered["messages"][1] == answer
    assert answered["updatedAt"] >= first["updatedAt"]

    await ws.request("sessions.update", sessionId=session_id, title="Renamed")
    plain = await ws.request("sessions.get", sessionId=session_id)
    assert (plain["title"], "messages" in plain) == ("Renamed", False)
    full = await ws.request("sessions.get", sessionId=session_id, includeMessages=True)
    assert (full["title"], texts(full)) == ("Renamed", texts(answered))

    await ws.request("sessions.archive", sessionId=session_id)
    archived = await ws.request("sessions.get", sessionId=session_id, includeMessages=True)
    assert archived["status"] == "archived"
    synced = await ws.request("sessions.sync", sessionId=session_id)
    read_only = ("messages", "run", "queue")
    assert synced["session"] == {k: v for k, v in archived.items() if k not in read_only}
    assert (synced["messages"], synced["queue"]) == (archived["messages"], archived["queue"])
    ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_streamed_text_written_without_an_event_reaches_a_cached_read(botical_app, make_user):
    app = botical_app
    alice = await make_user("alice")
    identity = await app.auth.authenticate(alice.token)
    project = await app.projects.create(identity, "P")
    session = await app.sessions.create(project["id"], alice.id)
    user_message, _ = await app.messages.create_user_message(
        session["id"], alice.id, "hi", "run_1", "default", "echo"
    )
    assistant = await app.messages.create_assistant(
        project["id"], session["id"], user_message["id"], "run_1", "default", "echo"
    )
    recorder = PartRecorder(
        app.db,
        app.bus,
        project["id"],
        session["id"],
        assistant["id"],
        flush_interval=3600,  # only the explicit flush below writes the text
        stored=app.sessions.text_stored,
    )
    await recorder.delta("text", "Hel")
    await recorder.delta("text", "lo")
    before = await app.sessions.get_json(session["id"], True)
    assert await app.sessions.get_json(session["id"], True) is before  # kept, not read again
    assert "Hello" not in before  # stored text lags the deltas until a flush

    await recorder.flush()  # an UPDATE with no event of its own
    after = await app.sessions.get_json(session["id"], True)
    assert after is not before
    parts = [
        p for m in (await app.sessions.get(session["id"], True))["messages"] for p in m["parts"]
    ]
    assert [p.get("text") for p in parts] == ["hi", "Hello"]
    assert '"text":"Hello"' in after


@pytest.mark.gen_test(timeout=30)
async def test_a_cached_read_is_refused_once_the_reader_is_removed(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await new_project(alice)
    await add_member(alice, project_id, bob, "viewer")
    owner = await connect(botical_app, alice.token)
    session_id = await new_session(owner, project_id)
    viewer = await connect(botical_app, bob.token)
    for _ in range(2):  # the second read is served from the caches
        assert (await viewer.request("sessions.get", sessionId=session_id))["id"] == session_id

    resp = await alice.api.delete(f"/api/projects/{project_id}/members/{bob.id}")
    assert resp.status == 204, resp.body
    with pytest.raises(WsError) as refused:
        await viewer.request("sessions.get", sessionId=session_id)
    assert refused.value.code == "NOT_FOUND"
    owner.close()
    viewer.close()
