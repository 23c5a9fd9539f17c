"""Broadcasting over real sockets: an answer streams to every subscriber in order, once per
channel; subscriptions are authorized; users never see each other; slow consumers are cut off."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.ws_helpers import (
    SESSION_EVENTS,
    ConnectionWatcher,
    RawWebSocket,
    add_member,
    answer_frames,
    connect,
    delta_text,
    new_project,
    new_session,
    on,
    run_ended,
    send,
    seqs_covered,
    settle,
    stored_answer,
    take_until,
    text_of,
)

PROJECT_EVENTS = {"session.created", "session.updated", "agent.status_changed"}


@pytest.fixture
def watcher():
    return ConnectionWatcher()


@pytest.fixture
def botical_plugins(watcher):
    return (watcher,)


def _limits(**websocket: Any):
    return pytest.mark.parametrize("botical_overrides", [{"websocket": websocket}])


def _bus_events(events, session_id: str) -> list[tuple[str, Any]]:
    """What the bus published for a session's channel, as it would look on the wire."""
    return [
        (e.name, json.loads(json.dumps(e.data)))
        for e in events.events
        if e.session_id == session_id and e.name in SESSION_EVENTS
    ]


def _assert_consecutive(frames: list[dict[str, Any]], after: int) -> None:
    """Seqs go up by one from `after`; a merged delta stands for the seqs it replaced."""
    covered = seqs_covered(frames)
    assert covered == list(range(after + 1, after + 1 + len(covered)))


def _has_events(frames: list[dict[str, Any]]) -> bool:
    return any(f.get("type") == "event" for f in frames)


async def _team(make_user, botical_app, *roles: str):
    """Alice owns a project; one more user per role joins it. Returns people and project id."""
    alice = await make_user("alice")
    project_id = await new_project(alice)
    others = []
    for n, role in enumerate(roles):
        person = await make_user(f"user{n}")
        await add_member(alice, project_id, person, role)
        others.append(person)
    return alice, others, project_id


# --- one answer, many subscribers ---


@pytest.mark.gen_test
async def test_answer_streams_to_every_subscriber_in_order_exactly_once(
    botical_app, make_user, events
):
    alice, (bob, carol), project_id = await _team(make_user, botical_app, "viewer", "member")
    sender = await connect(botical_app, alice.token)
    session_id = await new_session(sender, project_id)
    channel = f"session:{session_id}"
    subscribers = [await connect(botical_app, p.token) for p in (bob, carol)]
    acks = [await ws.subscribe(channel) for ws in subscribers]
    assert [a["subscribed"][0]["channel"] for a in acks] == [channel, channel]
    start = acks[0]["subscribed"][0]["seq"]

    run_id = await send(sender, session_id, "hello there wide world")
    received = [await answer_frames(ws, run_id, channel) for ws in subscribers]
    received = [got + await settle(ws) for got, ws in zip(received, subscribers, strict=True)]

    assert received[0] == received[1]  # the same frames, byte for byte after parsing
    frames = received[0]
    assert all(f["type"] == "event" and f["channel"] == channel for f in frames)
    _assert_consecutive(frames, start)
    assert [(f["event"], f["data"]) for f in frames] == _bus_events(events, session_id)
    assert not _has_events(await settle(sender))  # the sender did not subscribe

    names = [f["event"] for f in frames]
    first_delta = next(i for i, f in enumerate(frames) if "delta" in f["data"])
    last_delta = max(i for i, f in enumerate(frames) if "delta" in f["data"])
    assert frames[0]["event"] == "message.created"
    assert frames[0]["data"]["message"]["role"] == "user"
    assert "message.created" in names[1:first_delta]  # the assistant's message
    assert "part.created" in names[:first_delta]
    assert ("agent.status_changed", "streaming") in [
        (f["event"], f["data"].get("status")) for f in frames[:first_delta]
    ]
    assert [frames[i]["data"]["delta"] for i in range(first_delta, last_delta + 1)] == [
        "hello ",
        "there ",
        "wide ",
        "world",
    ]
    updated = [
        i
        for i, f in enumerate(frames)
        if f["event"] == "message.updated" and f["data"]["message"]["status"] == "completed"
    ]
    assert len(updated) == 1 and updated[0] > last_delta
    assert (names[-1], frames[-1]["data"]["status"]) == ("agent.status_changed", "idle")
    stored = await stored_answer(sender, session_id, run_id)
    assert delta_text(frames) == text_of(stored) == "hello there wide world"
    for ws in (sender, *subscribers):
        ws.close()


@pytest.mark.gen_test
async def test_session_and_project_subscriber_gets_status_once_per_channel(
    botical_app, make_user, events
):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    session_ch, project_ch = f"session:{session_id}", f"project:{project_id}"
    ack = await ws.subscribe(session_ch, project_ch)
    starts = {s["channel"]: s["seq"] for s in ack["subscribed"]}

    run_id = await send(ws, session_id, "one two three")
    ended: set[str] = set()

    def ended_on_both(frame: dict[str, Any]) -> bool:
        ended.update(c for c in (session_ch, project_ch) if run_ended(run_id, c)(frame))
        return len(ended) == 2

    frames = await take_until(ws, ended_on_both) + await settle(ws)

    by_session, by_project = on(frames, session_ch), on(frames, project_ch)
    assert len(by_session) + len(by_project) == len(frames)
    _assert_consecutive(by_session, starts[session_ch])
    _assert_consecutive(by_project, starts[project_ch])
    statuses = [(e.data["status"], e.data["runId"]) for e in events.find("agent.status_changed")]
    for channel_frames in (by_session, by_project):
        got = [
            (f["data"]["status"], f["data"]["runId"])
            for f in channel_frames
            if f["event"] == "agent.status_changed"
        ]
        assert got == statuses
    assert {f["event"] for f in by_project} <= PROJECT_EVENTS
    assert not [f for f in by_project if f["event"].startswith(("message.", "part."))]
    assert [(f["event"], f["data"]) for f in by_session] == _bus_events(events, session_id)
    message_ids = [
        f["data"]["message"]["id"] for f in by_session if f["event"] == "message.created"
    ]
    assert len(message_ids) == len(set(message_ids)) == 2
    ws.close()


@pytest.mark.gen_test
async def test_unsubscribed_channel_gets_nothing_more(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    channel = f"session:{session_id}"
    await ws.subscribe(channel)
    first = await send(ws, session_id, "first")
    assert delta_text(await answer_frames(ws, first, channel)) == "first"
    reply = await ws.call({"type": "unsubscribe", "channels": [channel]})
    assert reply["result"] == {"unsubscribed": [channel]}
    observer = await connect(botical_app, alice.token)
    await observer.subscribe(channel)
    second = await send(ws, session_id, "second")
    await answer_frames(observer, second, channel)
    assert not _has_events(await settle(ws))
    for client in (ws, observer):
        client.close()


# --- authorization of subscriptions ---


@pytest.mark.gen_test
async def test_foreign_channels_are_forbidden_and_deliver_nothing(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    bobs_project = await new_project(bob, "Bob's")
    bob_ws = await connect(botical_app, bob.token)
    bobs_session = await new_session(bob_ws, bobs_project)
    await bob_ws.subscribe(f"session:{bobs_session}")
    alice_ws = await connect(botical_app, alice.token)

    foreign = [
        f"session:{bobs_session}",
        f"project:{bobs_project}",
        f"user:{bob.id}",
        "session:sess_00000000000000000000000000",
    ]
    ack = await alice_ws.subscribe(*foreign)
    assert ack["subscribed"] == []
    assert [(r["channel"], r["error"]["code"]) for r in ack["rejected"]] == [
        (c, "FORBIDDEN") for c in foreign
    ]

    run_id = await send(bob_ws, bobs_session, "private words")
    await answer_frames(bob_ws, run_id, f"session:{bobs_session}")
    assert not _has_events(await settle(alice_ws))
    assert await alice_ws.request("subscriptions.list") == {"items": []}
    for ws in (alice_ws, bob_ws):
        ws.close()


@pytest.mark.gen_test
async def test_subscribe_without_id_reports_rejections_as_events(botical_app, make_user):
    alice = await make_user("alice")
    bob = await make_user("bob")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    ws.send_raw(
        {
            "type": "subscribe",
            "channels": [f"session:{session_id}", f"user:{bob.id}", "nonsense"],
        }
    )
    rejected = [await ws.next_event("subscription.rejected") for _ in range(2)]
    assert [(r["channel"], r["data"]["channel"]) for r in rejected] == [
        ("connection", f"user:{bob.id}"),
        ("connection", "nonsense"),
    ]
    assert [r["data"]["error"]["code"] for r in rejected] == ["FORBIDDEN", "VALIDATION_ERROR"]
    listed = await ws.request("subscriptions.list")
    assert [i["channel"] for i in listed["items"]] == [f"session:{session_id}"]
    ws.close()


@pytest.mark.gen_test
async def test_users_on_different_projects_see_nothing_of_each_other(botical_app, make_user):
    people = [await make_user("alice"), await make_user("bob")]
    setups = []
    for person in people:
        project_id = await new_project(person)
        ws = await connect(botical_app, person.token)
        session_id = await new_session(ws, project_id)
        channels = [f"session:{session_id}", f"project:{project_id}", f"user:{person.id}"]
        assert len((await ws.subscribe(*channels))["subscribed"]) == 3
        setups.append((person, ws, project_id, session_id, channels))

    runs = [
        await send(ws, session_id, f"only for {person.name} to read")
        for person, ws, _, session_id, _ in setups
    ]
    received = []
    for (person, ws, _, _, channels), run_id in zip(setups, runs, strict=True):
        frames = await answer_frames(ws, run_id, channels[0]) + await settle(ws)
        assert delta_text(frames) == f"only for {person.name} to read"
        assert {f["channel"] for f in frames if f["type"] == "event"} <= set(channels)
        received.append(json.dumps(frames))
    for index, (person, _, project_id, session_id, _) in enumerate(setups):
        theirs = received[1 - index]  # everything the other user received
        assert person.id not in theirs
        assert project_id not in theirs and session_id not in theirs
    for _, ws, *_ in setups:
        ws.close()


@pytest.mark.gen_test
async def test_approval_required_reaches_the_senders_user_channel(botical_app, make_user):
    alice, (bob,), project_id = await _team(make_user, botical_app, "member")
    alice_ws = await connect(botical_app, alice.token)
    bob_ws = await connect(botical_app, bob.token)
    session_id = await new_session(alice_ws, project_id)
    await alice_ws.subscribe(f"user:{alice.id}")
    await bob_ws.subscribe(f"user:{bob.id}", f"session:{session_id}")

    run_id = await send(alice_ws, session_id, '/tool write {"path": "a.txt", "content": "x"}')
    required = await alice_ws.next_event("tool.approval_required")
    approval = required["data"]["approval"]
    assert required["channel"] == f"user:{alice.id}"
    assert (approval["tool"], approval["requestedBy"], approval["runId"]) == (
        "write",
        alice.id,
        run_id,
    )
    on_session = await bob_ws.next_event("tool.approval_required")
    assert on_session["channel"] == f"session:{session_id}"
    assert on_session["data"]["approval"]["id"] == approval["id"]
    assert not on(await settle(bob_ws), f"user:{bob.id}")

    await alice_ws.request("tools.reject", approvalId=approval["id"], reason="no")
    resolved = await bob_ws.next_event("tool.approval_resolved")
    assert resolved["data"]["approval"]["status"] == "rejected"
    await take_until(bob_ws, run_ended(run_id))
    for ws in (alice_ws, bob_ws):
        ws.close()


@_limits(max_channels=2)
@pytest.mark.gen_test
async def test_channels_beyond_max_channels_are_rejected(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    channels = [f"session:{session_id}", f"project:{project_id}", f"user:{alice.id}"]
    ack = await ws.subscribe(*channels)
    assert [s["channel"] for s in ack["subscribed"]] == channels[:2]
    assert [(r["channel"], r["error"]["code"]) for r in ack["rejected"]] == [
        (channels[2], "RATE_LIMITED")
    ]
    again = await ws.subscribe(channels[0])  # already subscribed: not one more
    assert [s["channel"] for s in again["subscribed"]] == [channels[0]]
    await ws.call({"type": "unsubscribe", "channels": [channels[1]]})
    assert [s["channel"] for s in (await ws.subscribe(channels[2]))["subscribed"]] == [channels[2]]
    ws.close()


# --- slow consumers ---


async def _raw_subscriber(app, token: str, channel: str) -> tuple[RawWebSocket, str]:
    """A raw client subscribed to `channel`; it reads up to the ack and then stops reading."""
    raw = await RawWebSocket.open(app.port, token)
    ready = await raw.read_json()
    await raw.send({"type": "subscribe", "id": "sub", "channels": [channel]})
    while True:
        frame = await raw.read_json()
        if frame["type"] == "response":
            assert frame["id"] == "sub" and frame["result"]["subscribed"], frame
            return raw, ready["data"]["connectionId"]


@_limits(queue_max_messages=50, queue_max_bytes=65536)
@pytest.mark.gen_test(timeout=60)
async def test_client_that_stops_reading_is_closed_with_4008(botical_app, make_user, watcher):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    sender = await connect(botical_app, alice.token)
    reader = await connect(botical_app, alice.token)
    session_id = await new_session(sender, project_id)
    channel = f"session:{session_id}"
    await reader.subscribe(channel)
    raw, raw_id = await _raw_subscriber(botical_app, alice.token, channel)
    slow = botical_app.connections.get(raw_id)

    start = botical_app.broadcaster.seq(channel)
    received: list[dict[str, Any]] = []
    answers = 0
    while not slow.closed:  # each answer is a few thousand frames; one is usually enough
        assert answers < 5, "the client that stopped reading was never cut off"
        words = " ".join(f"m{answers}w{n:04d}" for n in range(1500))
        run_id = await send(sender, session_id, words)
        frames = await answer_frames(reader, run_id, channel)
        received += frames
        stored = await stored_answer(sender, session_id, run_id)
        assert delta_text(frames) == text_of(stored) == words
        answers += 1

    assert await raw.close_code() == 4008
    raw.close()
    await watcher.wait_closed(raw_id)
    assert botical_app.connections.get(raw_id) is None
    assert [c.id for c in botical_app.connections.subscribers(channel)] == [
        reader.ready["connectionId"]
    ]
    assert botical_app.connections.count_for_user(alice.id) == 2
    received += await settle(reader)
    _assert_consecutive(received, start)  # the reader kept up and missed nothing
    for ws in (sender, reader):
        ws.close()


@_limits(queue_max_messages=50, queue_max_bytes=65536)
@pytest.mark.gen_test(timeout=30)
async def test_a_response_larger_than_the_queue_bound_reaches_a_fast_reader(botical_app, make_user):
    alice = await make_user("alice")
    project_id = await new_project(alice)
    ws = await connect(botical_app, alice.token)
    session_id = await new_session(ws, project_id)
    channel = f"session:{session_id}"
    await ws.subscribe(channel)
    words = ("y" * 9999 + " ") * 2  # 20 KB a message: every event fits the queue bound
    for _ in range(4):
        run_id = await send(ws, session_id, words)
        assert delta_text(await answer_frames(ws, run_id, channel)) == words
    whole = await ws.request("sessions.get", sessionId=session_id, includeMessages=True)
    assert len(json.dumps(whole)) > 65536  # one frame bigger than the bound
    assert [text_of(m) for m in whole["messages"]] == [words] * 8
    ws.close()
