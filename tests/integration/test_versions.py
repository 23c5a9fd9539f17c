"""A conversation as a tree: edit a question, regenerate an answer, switch between versions,
fork a session at a message; two clients watching see every change exactly, and replay after
a reconnect stays exact."""

from __future__ import annotations

from typing import Any

import pytest

from botical.testing.wsclient import WsClient, WsError
from tests.integration.mirror import Mirror, same_as_sync
from tests.integration.ws_helpers import connect, new_project, new_session, text_of

SLOW = "/slow " + "word " * 60


async def _ended(ws: WsClient, run_id: str) -> None:
    await ws.next_event("agent.status_changed", timeout=20, runId=run_id, status="idle")


async def _answer(ws: WsClient, sid: str, content: str, **params: Any) -> dict[str, Any]:
    sent = await ws.request("messages.send", sessionId=sid, content=content, **params)
    await _ended(ws, sent["runId"])
    return sent


async def _path(ws: WsClient, sid: str) -> list[dict[str, Any]]:
    return (await ws.request("sessions.get", sessionId=sid, includeMessages=True))["messages"]


def _content(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Messages without their ids: role, status, usage, and each part's type, status, text."""
    return [
        (
            m["role"],
            m["status"],
            m["finishReason"],
            m["usage"],
            [(p["type"], p["status"], p.get("text"), p.get("output")) for p in m["parts"]],
        )
        for m in messages
    ]


async def _setup(app: Any, make_user: Any, watchers: int = 0):
    owner = await make_user("owner", exec=True)
    project_id = await new_project(owner)
    ws = await connect(app, owner.token)
    sid = await new_session(ws, project_id)
    others = [await connect(app, owner.token) for _ in range(watchers)]
    for client in (ws, *others):
        await client.subscribe(f"session:{sid}")
    return owner, project_id, ws, sid, others


@pytest.mark.gen_test(timeout=60)
async def test_an_edit_is_a_new_version_with_its_own_answer(botical_app, make_user):
    _, _, ws, sid, _ = await _setup(botical_app, make_user)
    first = await _answer(ws, sid, "one")
    await _answer(ws, sid, "two")
    question = first["message"]["id"]
    edited = await ws.request("messages.edit", sessionId=sid, messageId=question, content="uno")
    assert edited["message"]["parentId"] is None  # a sibling of "one": both start the talk
    assert edited["message"]["versions"] == {
        "index": 2,
        "count": 2,
        "ids": [question, edited["message"]["id"]],
    }
    await _ended(ws, edited["runId"])
    path = await _path(ws, sid)
    assert [(m["role"], text_of(m)) for m in path] == [("user", "uno"), ("assistant", "uno")]
    assert [m["versions"]["count"] for m in path] == [2, 1]


@pytest.mark.gen_test(timeout=60)
async def test_select_switches_versions_and_remembers_the_newest_branch(botical_app, make_user):
    owner, _, ws, sid, _ = await _setup(botical_app, make_user)
    first = await _answer(ws, sid, "one")
    await _answer(ws, sid, "two")
    original = first["message"]["id"]
    edited = await ws.request("messages.edit", sessionId=sid, messageId=original, content="uno")
    await _ended(ws, edited["runId"])

    back = await owner.api.post(f"/api/sessions/{sid}/messages/{original}/select", {})
    assert back.status == 200, back.body
    assert back.body["after"] is None
    assert [text_of(m) for m in back.body["messages"]] == ["one", "one", "two", "two"]
    assert back.body["messages"][0]["versions"]["index"] == 1
    assert [m["id"] for m in await _path(ws, sid)] == [m["id"] for m in back.body["messages"]]

    again = await ws.request("messages.select", sessionId=sid, messageId=original)
    assert again == back.body  # already shown: nothing changes
    forward = await ws.request("messages.select", sessionId=sid, messageId=edited["message"]["id"])
    assert [text_of(m) for m in forward["messages"]] == ["uno", "uno"]


@pytest.mark.gen_test(timeout=60)
async def test_regenerate_a_named_answer_and_move_between_its_versions(botical_app, make_user):
    _, _, ws, sid, _ = await _setup(botical_app, make_user)
    first = await _answer(ws, sid, "hello")
    answer = (await _path(ws, sid))[1]
    retried = await ws.request("messages.retry", sessionId=sid, messageId=answer["id"])
    await _ended(ws, retried["runId"])
    path = await _path(ws, sid)
    assert path[0]["id"] == first["message"]["id"]
    assert (path[1]["runId"], path[1]["versions"]["index"], path[1]["versions"]["count"]) == (
        retried["runId"],
        2,
        2,
    )
    older = await ws.request("messages.select", sessionId=sid, messageId=answer["id"])
    assert (older["after"], [m["id"] for m in older["messages"]]) == (
        first["message"]["id"],
        [answer["id"]],
    )


@pytest.mark.gen_test(timeout=60)
async def test_versions_cannot_change_under_a_run_and_must_exist(botical_app, make_user):
    _, _, ws, sid, _ = await _setup(botical_app, make_user)
    first = await _answer(ws, sid, "hello")
    question = first["message"]["id"]
    running = await ws.request("messages.send", sessionId=sid, content=SLOW)
    for method, params in (
        ("messages.select", {"messageId": question}),
        ("messages.edit", {"messageId": question, "content": "x"}),
        ("messages.retry", {"messageId": question}),
    ):
        with pytest.raises(WsError) as busy:
            await ws.request(method, sessionId=sid, **params)
        assert busy.value.code == "CONFLICT", method
    await ws.request("messages.cancel", sessionId=sid)
    await _ended(ws, running["runId"])
    answer = (await _path(ws, sid))[1]
    with pytest.raises(WsError) as not_user:
        await ws.request("messages.edit", sessionId=sid, messageId=answer["id"], content="x")
    assert (not_user.value.code, list(not_user.value.details)) == (
        "VALIDATION_ERROR",
        ["messageId"],
    )
    other = await new_session(ws, (await ws.request("sessions.get", sessionId=sid))["projectId"])
    for method, params in (
        ("messages.select", {"messageId": question}),
        ("messages.edit", {"messageId": question, "content": "x"}),
        ("sessions.fork", {"messageId": question}),
    ):
        with pytest.raises(WsError) as elsewhere:
            await ws.request(method, sessionId=other, **params)
        assert elsewhere.value.code == "NOT_FOUND", method


@pytest.mark.gen_test(timeout=60)
async def test_watchers_see_every_edit_queue_interrupt_and_switch_exactly(botical_app, make_user):
    owner, _, ws, sid, (bob, carol) = await _setup(botical_app, make_user, watchers=2)
    first = await _answer(ws, sid, "one")
    slow = await ws.request("messages.send", sessionId=sid, content=SLOW)
    queued = await ws.request("messages.send", sessionId=sid, content="queued", ifBusy="queue")
    await ws.next_event("agent.status_changed", runId=slow["runId"], status="streaming")
    stop = await ws.request("messages.send", sessionId=sid, content=SLOW, ifBusy="interrupt")

    # carol drops off mid-stream and comes back with `since`: the replay fills the gap
    await carol.next_event("agent.status_changed", runId=stop["runId"], status="streaming")
    carol_frames, last_seq = list(carol.received), carol.received[-1]["seq"]
    carol.close()
    rolled = await ws.request("messages.send", sessionId=sid, content="instead", ifBusy="rollback")
    carol = await connect(botical_app, owner.token)
    ack = await carol.subscribe(f"session:{sid}", since={f"session:{sid}": last_seq})
    assert ack["subscribed"][0]["recovered"] is True

    await _ended(ws, queued["runId"])
    assert rolled["runId"] != queued["runId"]
    edited = await ws.request(
        "messages.edit", sessionId=sid, messageId=first["message"]["id"], content="uno"
    )
    await _ended(ws, edited["runId"])
    retried = await ws.request("messages.retry", sessionId=sid)
    await _ended(ws, retried["runId"])
    await ws.request("messages.select", sessionId=sid, messageId=first["message"]["id"])

    synced = await bob.request("sessions.sync", sessionId=sid)
    assert synced["queue"] == []
    same_as_sync(Mirror(sid).apply_all(bob.received), synced)
    same_as_sync(Mirror(sid).apply_all(carol_frames + carol.received), synced)
    same_as_sync(Mirror(sid).apply_all(ws.received), synced)
    texts = [text_of(m) for m in synced["messages"]]
    assert texts[:2] == ["one", "one"] and "instead" in texts and "queued" in texts


@pytest.mark.gen_test(timeout=60)
async def test_fork_copies_the_path_with_tool_results_and_todos_as_of_then(
    botical_app, make_user, tmp_path
):
    owner, project_id, ws, sid, _ = await _setup(botical_app, make_user)
    todos = '{"todos": [{"content": "read", "status": "in_progress"}]}'
    first = await _answer(ws, sid, f"/tool todowrite {todos}")
    await _answer(ws, sid, "later")
    await ws.request("todos.update", sessionId=sid, todos=[{"content": "new", "status": "pending"}])
    await ws.subscribe(f"project:{project_id}")
    answer = (await _path(ws, sid))[1]

    forked = await owner.api.post(f"/api/sessions/{sid}/fork", {"messageId": answer["id"]})
    assert forked.status == 201, forked.body
    fork = forked.body
    assert (fork["projectId"], fork["forkedFrom"]) == (
        project_id,
        {"sessionId": sid, "messageId": answer["id"]},
    )
    assert fork["usage"]["inputTokens"] == 0  # what the copies cost was counted once, there
    created = await ws.next_event("session.created", session__id=fork["id"])
    assert created["channel"] == f"project:{project_id}"

    copied = await _path(ws, fork["id"])
    source = await _path(ws, sid)
    assert [m["id"] for m in copied] != [m["id"] for m in source[:2]]
    assert _content(copied) == _content(source[:2])
    assert copied[1]["parentId"] == copied[0]["id"]
    tool_results = [p for p in copied[1]["parts"] if p["type"] == "tool_result"]
    assert [p["tool"] for p in tool_results] == ["todowrite"]
    assert (await ws.request("todos.get", sessionId=fork["id"]))["items"][0]["content"] == "read"
    assert first["message"]["id"] not in [m["id"] for m in copied]

    await ws.subscribe(f"session:{fork['id']}")
    more = await _answer(ws, fork["id"], "in the fork")
    assert (await _path(ws, fork["id"]))[-1]["runId"] == more["runId"]
    assert len(await _path(ws, sid)) == 4  # the source is untouched
