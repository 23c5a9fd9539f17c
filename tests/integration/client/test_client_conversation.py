"""The client's `Conversation` keeps a session's active path, versions and queue from events,
through a resync after the replay could not fill a gap, equal to `sessions.sync`."""

from __future__ import annotations

from typing import Any

import pytest

from botical.client import SYNCED, BoticalClient, Conversation, Subscription
from tests.integration.mirror import same_as_sync
from tests.integration.ws_helpers import ws_url

SLOW = "/slow " + " ".join(f"w{n}" for n in range(40))


async def _until_idle(events: Subscription, conversation: Conversation, run_id: str) -> list:
    seen = []
    while True:
        event = await events.next(timeout=20)
        conversation.apply(event)
        seen.append(event.event)
        data = event.data
        if event.event == "agent.status_changed" and (data["runId"], data["status"]) == (
            run_id,
            "idle",
        ):
            return seen


@pytest.mark.parametrize("botical_overrides", [{"websocket": {"replay_buffer": 0}}])
@pytest.mark.gen_test(timeout=60)
async def test_the_conversation_follows_versions_and_the_queue_across_a_resync(
    botical_app, make_user
):
    alice = await make_user("alice")
    client = BoticalClient(ws_url(botical_app), alice.token, initial_backoff=0.05)
    await client.connect()
    try:
        project = await client.rest("POST", "/api/projects", {"name": "P"})
        session = await client.request("sessions.create", projectId=project["id"])
        sid = session["id"]
        events = await client.subscribe(f"session:{sid}")
        conversation = Conversation(await client.request("sessions.sync", sessionId=sid))
        first = await client.request("messages.send", sessionId=sid, content="one")
        await _until_idle(events, conversation, first["runId"])
        slow = await client.request("messages.send", sessionId=sid, content=SLOW)
        queued = await client.request("messages.send", sessionId=sid, content="two", ifBusy="queue")
        client.drop_connection()  # no replay: the client resyncs with session.synced
        seen = await _until_idle(events, conversation, queued["runId"])
        assert SYNCED in seen and slow["runId"] != queued["runId"]
        edited = await client.request(
            "messages.edit", sessionId=sid, messageId=first["message"]["id"], content="uno"
        )
        await _until_idle(events, conversation, edited["runId"])
        edited_id = edited["message"]["id"]
        assert conversation.other_version(edited_id, -1) == first["message"]["id"]
        assert conversation.other_version(edited_id, 1) is None
        await client.request(
            "messages.select", sessionId=sid, messageId=conversation.other_version(edited_id, -1)
        )
        change = await events.next(timeout=10)
        conversation.apply(change)
        assert change.event == "path.changed"
        same_as_sync(conversation, await client.request("sessions.sync", sessionId=sid))
        assert [m["parts"][0]["text"] for m in conversation.path if m["role"] == "user"] == [
            "one",
            SLOW,
            "two",
        ]
    finally:
        await client.close()


def test_other_version_at_the_ends_and_for_unknown_messages():
    message: dict[str, Any] = {
        "id": "msg_b",
        "parentId": None,
        "status": "completed",
        "versions": {"index": 2, "count": 3, "ids": ["msg_a", "msg_b", "msg_c"]},
        "parts": [],
    }
    conversation = Conversation({"messages": [message], "queue": []})
    assert [conversation.other_version("msg_b", step) for step in (-1, 1, -2, 2)] == [
        "msg_a",
        "msg_c",
        None,
        None,
    ]
    assert conversation.other_version("msg_x", 1) is None
