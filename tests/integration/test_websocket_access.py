"""Access that changes while a socket is open, and channels that scoped credentials may not use."""

import pytest

from botical.testing.wsclient import WsError
from tests.integration.ws_helpers import add_member, connect, new_project, new_session, send


@pytest.mark.gen_test
async def test_a_removed_member_loses_the_projects_channels(botical_app, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    project_id = await new_project(alice)
    await add_member(alice, project_id, bob, "viewer")
    owner, viewer = await connect(botical_app, alice.token), await connect(botical_app, bob.token)
    session_id = await new_session(owner, project_id)
    channels = [f"session:{session_id}", f"project:{project_id}"]
    assert [s["channel"] for s in (await viewer.subscribe(*channels))["subscribed"]] == channels

    removed = await alice.api.delete(f"/api/projects/{project_id}/members/{bob.id}")
    assert removed.status == 204
    revoked = [await viewer.next_event("subscription.revoked") for _ in channels]
    assert sorted(f["data"]["channel"] for f in revoked) == sorted(channels)
    assert (await viewer.request("subscriptions.list"))["items"] == []

    await owner.subscribe(f"session:{session_id}")
    await send(owner, session_id, "after removal")
    await owner.next_event("message.created")  # the owner hears it...
    listed = await viewer.request("subscriptions.list")  # ...and by this reply bob would have
    assert listed["items"] == []
    assert not [f for f in viewer.frames if f.get("channel") in channels]


@pytest.mark.gen_test
async def test_a_project_scoped_key_cannot_use_the_user_channel(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    _, key = await botical_app.apikeys.create(alice.id, project_id)
    ws = await connect(botical_app, key)
    ack = await ws.subscribe(f"user:{alice.id}", f"project:{project_id}")
    assert [s["channel"] for s in ack["subscribed"]] == [f"project:{project_id}"]
    assert ack["rejected"][0]["error"]["code"] == "FORBIDDEN"


@pytest.mark.gen_test
async def test_since_without_the_epoch_is_not_recovered(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, await new_project(alice))
    channel = f"session:{session_id}"
    await ws.request("sessions.update", sessionId=session_id, title="one")
    ack = await ws.call({"type": "subscribe", "channels": [channel], "since": {channel: 0}})
    assert ack["result"]["subscribed"][0]["recovered"] is False


@pytest.mark.gen_test
async def test_retry_in_an_archived_session_is_a_conflict(botical_app, make_user):
    alice = await make_user("alice")
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, await new_project(alice))
    await ws.subscribe(f"session:{session_id}")
    await send(ws, session_id, "hello")
    await ws.next_event("agent.status_changed", status="idle")
    await ws.request("sessions.archive", sessionId=session_id)
    with pytest.raises(WsError) as error:
        await ws.request("messages.retry", sessionId=session_id)
    assert error.value.code == "CONFLICT"
