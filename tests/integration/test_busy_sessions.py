"""Sending while a run is in progress (`ifBusy`): reject, queue, interrupt, rollback; races
between tabs decided once; the queue in `sessions.sync` and in every subscriber's events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from botical.testing.wsclient import WsClient, WsError
from tests.integration.mirror import Mirror, same_as_sync
from tests.integration.ws_helpers import connect, new_project, new_session, text_of

SLOW = "/slow " + "word " * 60  # about three seconds of streaming


async def _watched(app: Any, make_user: Any, watchers: int = 1):
    """A session, the owner's socket and `watchers` more sockets of a member, all subscribed."""
    owner = await make_user("owner")
    project_id = await new_project(owner)
    ws = await connect(app, owner.token)
    session_id = await new_session(ws, project_id)
    others = [await connect(app, owner.token) for _ in range(watchers)]
    for client in (ws, *others):
        await client.subscribe(f"session:{session_id}")
    return owner, ws, session_id, others


async def _ended(ws: WsClient, run_id: str) -> None:
    await ws.next_event("agent.status_changed", timeout=20, runId=run_id, status="idle")


async def _streaming(ws: WsClient, run_id: str) -> None:
    await ws.next_event("agent.status_changed", runId=run_id, status="streaming")


async def _send(ws: WsClient, sid: str, content: str, if_busy: str | None = None) -> dict:
    params = {"ifBusy": if_busy} if if_busy else {}
    return await ws.request("messages.send", sessionId=sid, content=content, **params)


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], text_of(m)) for m in messages]


@pytest.mark.gen_test(timeout=60)
async def test_queued_messages_run_in_order_after_the_current_run(botical_app, make_user):
    _, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    second = await _send(ws, sid, "second", "queue")
    third = await _send(ws, sid, "third", "queue")
    assert [second["message"]["status"], third["message"]["status"]] == ["queued", "queued"]
    assert second["message"]["parentId"] is None and "versions" not in second["message"]
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert [m["id"] for m in synced["queue"]] == [second["message"]["id"], third["message"]["id"]]
    assert [text_of(m) for m in synced["queue"]] == ["second", "third"]
    assert synced["status"]["runId"] == first["runId"]

    await _ended(ws, third["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert synced["queue"] == []
    assert _texts(synced["messages"]) == [
        ("user", SLOW),
        ("assistant", SLOW[len("/slow ") :]),
        ("user", "second"),
        ("assistant", "second"),
        ("user", "third"),
        ("assistant", "third"),
    ]
    runs = [m["runId"] for m in synced["messages"]]
    assert runs == [r for r in (first, second, third) for r in (r["runId"],) * 2]
    ends = [
        f["data"]["runId"]
        for f in watcher.received
        if f.get("event") == "agent.status_changed" and f["data"]["status"] == "idle"
    ]
    assert ends == [first["runId"], second["runId"], third["runId"]]  # one after the other
    for client in (ws, watcher):
        same_as_sync(Mirror(sid).apply_all(client.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_a_queued_message_can_be_taken_out_of_the_queue(botical_app, make_user):
    owner, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    dropped = await _send(ws, sid, "never mind", "queue")
    kept = await _send(ws, sid, "kept", "queue")
    cancelled = await owner.api.post(
        f"/api/sessions/{sid}/cancel", {"messageId": dropped["message"]["id"]}
    )
    assert cancelled.body == {"cancelled": True, "runId": dropped["runId"]}
    deleted = await watcher.next_event("message.deleted")
    assert deleted["data"] == {"sessionId": sid, "messageId": dropped["message"]["id"]}
    again = await ws.request("messages.cancel", sessionId=sid, messageId=dropped["message"]["id"])
    assert again == {"cancelled": False, "runId": None}
    await _ended(ws, kept["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert [text_of(m) for m in synced["messages"] if m["role"] == "user"] == [SLOW, "kept"]
    assert first["runId"] != kept["runId"]
    same_as_sync(Mirror(sid).apply_all(watcher.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_stopping_the_run_lets_the_queue_go_on(botical_app, make_user):
    _, ws, sid, _ = await _watched(botical_app, make_user, 0)
    first = await _send(ws, sid, SLOW)
    queued = await _send(ws, sid, "next", "queue")
    await _streaming(ws, first["runId"])
    stopped = await ws.request("messages.cancel", sessionId=sid)
    assert stopped == {"cancelled": True, "runId": first["runId"]}
    await _ended(ws, queued["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert [m["status"] for m in synced["messages"]] == [
        "completed",
        "cancelled",
        "completed",
        "completed",
    ]


@pytest.mark.gen_test(timeout=60)
async def test_interrupt_stops_the_answer_keeps_it_and_answers_at_once(botical_app, make_user):
    _, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    await _streaming(ws, first["runId"])
    later = await _send(ws, sid, "stop, this instead", "interrupt")
    await _ended(ws, later["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    asked, stopped, new, answer = synced["messages"]
    assert asked["id"] == first["message"]["id"]
    assert (stopped["status"], stopped["finishReason"]) == ("cancelled", "interrupted")
    assert 0 < len(text_of(stopped)) < len(SLOW) - len("/slow ")
    assert [p["status"] for p in stopped["parts"] if p["type"] == "text"] == ["cancelled"]
    assert (new["id"], new["parentId"]) == (later["message"]["id"], stopped["id"])
    assert text_of(answer) == "stop, this instead"
    same_as_sync(Mirror(sid).apply_all(watcher.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_rollback_removes_the_answer_and_its_question(botical_app, make_user):
    owner, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    kept = await _send(ws, sid, "kept")
    await _ended(ws, kept["runId"])
    first = await _send(ws, sid, SLOW)
    await _streaming(ws, first["runId"])
    sent = await owner.api.post(
        f"/api/sessions/{sid}/messages", {"content": "instead", "ifBusy": "rollback"}
    )
    assert sent.status == 202, sent.body
    await _ended(ws, sent.body["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert _texts(synced["messages"]) == [
        ("user", "kept"),
        ("assistant", "kept"),
        ("user", "instead"),
        ("assistant", "instead"),
    ]
    gone = {f["data"]["messageId"] for f in watcher.received if f.get("event") == "message.deleted"}
    assert first["message"]["id"] in gone and len(gone) == 2
    listed = await ws.request("messages.list", sessionId=sid)
    assert len(listed["items"]) == 4  # removed, not hidden
    same_as_sync(Mirror(sid).apply_all(watcher.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_rollback_of_a_regenerated_answer_shows_the_previous_version(botical_app, make_user):
    _, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    await _ended(ws, first["runId"])
    retried = await ws.request("messages.retry", sessionId=sid)
    await _streaming(ws, retried["runId"])
    sent = await _send(ws, sid, "follow-up", "rollback")
    await _ended(ws, sent["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    question, answer, follow_up, _ = synced["messages"]
    assert question["id"] == first["message"]["id"]  # the question stays: it has an answer
    assert (answer["runId"], answer["versions"]["count"]) == (first["runId"], 1)
    assert follow_up["parentId"] == answer["id"]
    same_as_sync(Mirror(sid).apply_all(watcher.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_two_tabs_interrupting_at_once_stop_the_run_once(botical_app, make_user):
    _, ws, sid, (tab,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    await _streaming(ws, first["runId"])
    a, b = await asyncio.gather(
        _send(ws, sid, "from tab one", "interrupt"), _send(tab, sid, "from tab two", "interrupt")
    )
    for sent in (a, b):
        await _ended(ws, sent["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    statuses = [(m["role"], m["status"], m["finishReason"]) for m in synced["messages"]]
    assert statuses.count(("assistant", "cancelled", "interrupted")) == 1
    assert sorted(text_of(m) for m in synced["messages"][2::2]) == ["from tab one", "from tab two"]
    starts = [
        f["data"]["runId"]
        for f in ws.received
        if f.get("event") == "agent.status_changed" and f["data"]["status"] == "thinking"
    ]
    ends = [
        f["data"]["runId"]
        for f in ws.received
        if f.get("event") == "agent.status_changed" and f["data"]["status"] == "idle"
    ]
    assert starts == ends  # never two runs at once: each ended before the next began
    for client in (ws, tab):
        same_as_sync(Mirror(sid).apply_all(client.received), synced)


@pytest.mark.gen_test(timeout=60)
async def test_two_tabs_sending_to_an_idle_session_start_one_run(botical_app, make_user):
    _, ws, sid, (tab,) = await _watched(botical_app, make_user)
    results = await asyncio.gather(
        _send(ws, sid, SLOW, "queue"), _send(tab, sid, "second", "queue"), return_exceptions=True
    )
    assert sorted(r["message"]["status"] for r in results) == ["completed", "queued"]
    rejected = await asyncio.gather(
        _send(ws, sid, "one"), _send(tab, sid, "two"), return_exceptions=True
    )
    assert [getattr(r, "code", None) for r in rejected] == ["CONFLICT", "CONFLICT"]
    for result in results:
        await _ended(ws, result["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert len(synced["messages"]) == 4 and synced["queue"] == []


@pytest.mark.gen_test(timeout=60)
async def test_the_queue_is_bounded_and_archiving_drops_it(botical_app, make_user):
    _, ws, sid, (watcher,) = await _watched(botical_app, make_user)
    first = await _send(ws, sid, SLOW)
    waiting = [await _send(ws, sid, f"q{i}", "queue") for i in range(32)]
    with pytest.raises(WsError) as full:
        await _send(ws, sid, "one too many", "queue")
    assert full.value.code == "CONFLICT"
    await ws.request("sessions.archive", sessionId=sid)
    await _ended(ws, first["runId"])
    synced = await ws.request("sessions.sync", sessionId=sid)
    assert (synced["queue"], synced["status"]["status"]) == ([], "idle")
    gone = [f["data"]["messageId"] for f in watcher.received if f.get("event") == "message.deleted"]
    assert gone == [w["message"]["id"] for w in waiting]


@pytest.mark.gen_test(timeout=60)
async def test_a_bad_if_busy_is_a_validation_error(botical_app, make_user):
    owner, ws, sid, _ = await _watched(botical_app, make_user, 0)
    with pytest.raises(WsError) as error:
        await _send(ws, sid, "hi", "later")
    assert (error.value.code, list(error.value.details)) == ("VALIDATION_ERROR", ["ifBusy"])
    refused = await owner.api.post(
        f"/api/sessions/{sid}/messages", {"content": "hi", "ifBusy": "sometime"}
    )
    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")
