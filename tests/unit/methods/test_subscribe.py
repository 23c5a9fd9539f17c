"""subscribe / unsubscribe frames and subscriptions.list over a real socket."""

from __future__ import annotations

import pytest

from botical.ids import new_id
from tests.unit.methods.helpers import add_member, new_project

MAX_CHANNELS = 4


@pytest.fixture
def botical_overrides():
    return {"websocket": {"max_channels": MAX_CHANNELS}}


async def _setup(make_user, connect):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(alice)
    session = await ws.request("sessions.create", projectId=project_id, title="t")
    return alice, project_id, session["id"], ws


def _on(ws, channel, event):
    """Event frames received (and not yet taken) on `channel` named `event`."""
    return [f for f in ws.frames if f.get("channel") == channel and f.get("event") == event]


@pytest.mark.gen_test
async def test_subscribe_is_acknowledged_with_seq(make_user, connect):
    alice, project_id, sid, ws = await _setup(make_user, connect)
    await ws.request("sessions.update", sessionId=sid, title="u")  # session seq 1, project 2
    # and the user channel 1: the project.created of its project
    channels = [f"session:{sid}", f"project:{project_id}", f"user:{alice.id}"]
    ack = await ws.subscribe(*channels)
    assert ack == {
        "subscribed": [
            {"channel": channels[0], "seq": 1, "recovered": False},
            {"channel": channels[1], "seq": 2, "recovered": False},
            {"channel": channels[2], "seq": 1, "recovered": False},  # project.created
        ],
        "rejected": [],
    }
    listed = await ws.request("subscriptions.list")
    seqs = (1, 2, 1)
    assert listed == {
        "items": [{"channel": c, "seq": s} for c, s in zip(channels, seqs, strict=True)]
    }


@pytest.mark.gen_test
async def test_subscribed_events_arrive_once_per_channel(make_user, connect):
    _, project_id, sid, ws = await _setup(make_user, connect)
    session_channel, project_channel = f"session:{sid}", f"project:{project_id}"
    await ws.subscribe(session_channel, project_channel)
    await ws.subscribe(session_channel, session_channel)  # again: still once
    await ws.request("sessions.update", sessionId=sid, title="new")
    # events are queued before the response that follows them, so all have arrived
    on_session = _on(ws, session_channel, "session.updated")
    on_project = _on(ws, project_channel, "session.updated")
    assert [f["data"]["session"]["title"] for f in on_session] == ["new"]
    assert [f["data"]["session"]["title"] for f in on_project] == ["new"]
    assert (on_session[0]["seq"], on_project[0]["seq"]) == (1, 2)


@pytest.mark.gen_test
async def test_unsubscribe_is_acknowledged_and_stops_events(make_user, connect):
    _, project_id, sid, ws = await _setup(make_user, connect)
    session_channel, project_channel = f"session:{sid}", f"project:{project_id}"
    await ws.subscribe(session_channel, project_channel)
    ack = await ws.call(
        {"type": "unsubscribe", "channels": [session_channel, "session:never_subscribed"]}
    )
    assert ack["result"] == {"unsubscribed": [session_channel, "session:never_subscribed"]}
    listed = await ws.request("subscriptions.list")
    assert [i["channel"] for i in listed["items"]] == [project_channel]
    await ws.request("sessions.update", sessionId=sid, title="after")
    assert _on(ws, session_channel, "session.updated") == []
    assert len(_on(ws, project_channel, "session.updated")) == 1


@pytest.mark.gen_test
async def test_rejected_channels_are_listed_with_their_error(make_user, connect):
    _, _, sid, ws = await _setup(make_user, connect)
    bob = await make_user("bob")
    theirs = await new_project(bob)
    bob_ws = await connect(bob)
    their_session = await bob_ws.request("sessions.create", projectId=theirs)
    wanted = [
        f"session:{sid}",
        f"user:{bob.id}",
        f"project:{theirs}",
        f"session:{their_session['id']}",
        f"session:{new_id('sess')}",
        "session:not-an-id",
        "room:1",
        "nonsense",
    ]
    ack = await ws.subscribe(*wanted)
    assert ack["subscribed"] == [{"channel": f"session:{sid}", "seq": 0, "recovered": False}]
    assert [(r["channel"], r["error"]["code"]) for r in ack["rejected"]] == [
        (f"user:{bob.id}", "FORBIDDEN"),
        (f"project:{theirs}", "FORBIDDEN"),
        (f"session:{their_session['id']}", "FORBIDDEN"),
        (wanted[4], "FORBIDDEN"),  # no such session: not revealed
        ("session:not-an-id", "FORBIDDEN"),
        ("room:1", "VALIDATION_ERROR"),
        ("nonsense", "VALIDATION_ERROR"),
    ]
    assert all(r["error"]["message"] for r in ack["rejected"])
    listed = await ws.request("subscriptions.list")
    assert [i["channel"] for i in listed["items"]] == [f"session:{sid}"]


@pytest.mark.gen_test
async def test_without_an_id_rejections_come_as_connection_events(make_user, connect):
    _, _, sid, ws = await _setup(make_user, connect)
    ws.send_raw({"type": "subscribe", "channels": ["room:1", f"session:{sid}"]})
    rejected = await ws.next_event("subscription.rejected")
    assert rejected["channel"] == "connection"
    assert rejected["data"]["channel"] == "room:1"
    assert rejected["data"]["error"]["code"] == "VALIDATION_ERROR"
    listed = await ws.request("subscriptions.list")
    assert [i["channel"] for i in listed["items"]] == [f"session:{sid}"]


@pytest.mark.gen_test
async def test_a_viewer_may_subscribe_to_the_project_and_its_sessions(make_user, connect):
    alice, project_id, sid, _ = await _setup(make_user, connect)
    viewer = await make_user("victor")
    await add_member(alice, project_id, viewer, "viewer")
    ws = await connect(viewer)
    ack = await ws.subscribe(f"session:{sid}", f"project:{project_id}", f"user:{viewer.id}")
    assert ack["rejected"] == []
    assert len(ack["subscribed"]) == 3


@pytest.mark.gen_test
async def test_channels_per_connection_are_limited(make_user, connect):
    alice, project_id, sid, ws = await _setup(make_user, connect)
    more = [await ws.request("sessions.create", projectId=project_id) for _ in range(3)]
    channels = [f"session:{sid}", f"project:{project_id}", f"user:{alice.id}"]
    channels += [f"session:{s['id']}" for s in more]
    ack = await ws.subscribe(*channels)
    assert [s["channel"] for s in ack["subscribed"]] == channels[:MAX_CHANNELS]
    assert [(r["channel"], r["error"]["code"]) for r in ack["rejected"]] == [
        (c, "RATE_LIMITED") for c in channels[MAX_CHANNELS:]
    ]
    again = await ws.subscribe(channels[0])  # one already held does not count twice
    assert again["rejected"] == []
    await ws.call({"type": "unsubscribe", "id": "u", "channels": [channels[1]]})
    assert (await ws.subscribe(channels[-1]))["rejected"] == []


@pytest.mark.gen_test
async def test_since_replays_what_was_missed(make_user, connect):
    alice, _, sid, ws = await _setup(make_user, connect)
    channel = f"session:{sid}"
    for title in ("one", "two", "three"):
        await ws.request("sessions.update", sessionId=sid, title=title)
    late = await connect(alice)
    ack = await late.subscribe(channel, since={channel: 1})
    assert ack["subscribed"] == [{"channel": channel, "seq": 3, "recovered": True}]
    replayed = [await late.next_event("session.updated") for _ in range(2)]
    assert [(f["seq"], f["data"]["session"]["title"]) for f in replayed] == [
        (2, "two"),
        (3, "three"),
    ]


@pytest.mark.gen_test
async def test_since_from_another_epoch_is_not_recovered(make_user, connect):
    alice, _, sid, ws = await _setup(make_user, connect)
    channel = f"session:{sid}"
    await ws.request("sessions.update", sessionId=sid, title="one")
    late = await connect(alice)
    assert late.ready["epoch"]
    stale = await late.call(
        {"type": "subscribe", "channels": [channel], "since": {channel: 0}, "epoch": "old"}
    )
    assert stale["result"]["subscribed"] == [{"channel": channel, "seq": 1, "recovered": False}]
    current = await late.call(
        {
            "type": "subscribe",
            "channels": [channel],
            "since": {channel: 1},
            "epoch": late.ready["epoch"],
        }
    )
    assert current["result"]["subscribed"] == [{"channel": channel, "seq": 1, "recovered": True}]
    assert _on(late, channel, "session.updated") == []
    ahead = await late.subscribe(channel, since={channel: 99})
    assert ahead["subscribed"][0]["recovered"] is False
