"""botical.client against a real in-process server: requests and typed errors, subscriptions,
lost connections, resume after a dropped socket, and a revoked credential."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from marshmallow import Schema

import botical
from botical.bus import Event as BusEvent
from botical.client import (
    SYNCED,
    BoticalClient,
    ClientError,
    ConnectionLost,
    ConnectionState,
    Event,
    Forbidden,
    MethodNotFound,
    NotFound,
    Subscription,
    Timeout,
    Unauthorized,
    ValidationFailed,
)
from botical.methods import MethodSpec

SLOW_WORDS = " ".join(f"word{n:02d}" for n in range(40))  # 40 deltas, 50 ms apart
MISSING_SESSION = "sess_00000000000000000000000000"


class NoParams(Schema):
    pass


class BlockingMethod:
    """A plugin with `test.block`, a method that answers only when the test says so."""

    def __init__(self) -> None:
        self.started: asyncio.Event | None = None

    @botical.hookimpl
    def botical_register_methods(self, register) -> None:
        register(MethodSpec("test.block", self.block, NoParams, None, None, None, "Block."))

    async def block(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        assert self.started is not None
        self.started.set()
        await asyncio.Event().wait()  # until the connection closes and cancels it
        return {}


@pytest.fixture
def blocking() -> BlockingMethod:
    return BlockingMethod()


@pytest.fixture
def botical_plugins(blocking):
    return (blocking,)


def ws_url(app: Any) -> str:
    return f"ws://127.0.0.1:{app.port}/ws"


async def _client(app: Any, token: str, states: list | None = None) -> BoticalClient:
    def record(state: ConnectionState, detail: str) -> None:
        if states is not None:
            states.append(state)

    client = BoticalClient(ws_url(app), token, initial_backoff=0.05, on_state=record)
    await client.connect()
    return client


def _while_away(app: Any, session: dict[str, Any]):
    """An on_state callback: when the client loses its socket, the session changes (a
    `session.updated` on the real bus), so the channel surely moves on while it is away."""
    published: list[int] = []

    def on_state(state: ConnectionState, detail: str) -> None:
        if state is ConnectionState.RECONNECTING:
            event = BusEvent(
                "session.updated",
                {"session": session},
                project_id=session["projectId"],
                session_id=session["id"],
            )
            app.bus.publish(event)
            published.append(app.broadcaster.seq(f"session:{session['id']}"))

    return on_state, published


async def _session(client: BoticalClient) -> str:
    return (await _new_session(client))["id"]


async def _new_session(client: BoticalClient) -> dict[str, Any]:
    project = await client.rest("POST", "/api/projects", {"name": "P"})
    return await client.request("sessions.create", projectId=project["id"])


async def _until_run_ends(events: Subscription, run_id: str) -> list[Event]:
    """Every event up to the run's final `agent.status_changed`."""
    taken = []
    while True:
        event = await events.next(timeout=20)
        taken.append(event)
        if (
            event.event == "agent.status_changed"
            and event.data["runId"] == run_id
            and event.data["status"] in ("idle", "error")
        ):
            return taken


def _deltas(events: list[Event]) -> str:
    return "".join(
        e.data["delta"] for e in events if e.event == "part.updated" and "delta" in e.data
    )


def _covered(events: list[Event]) -> list[int]:
    """The seqs the events stand for (a merged delta stands for merged_from..seq)."""
    seqs: list[int] = []
    for event in events:
        seqs.extend(range(event.merged_from or event.seq, event.seq + 1))
    return seqs


async def _stored_text(client: BoticalClient, session_id: str, run_id: str) -> str:
    listed = await client.request("messages.list", sessionId=session_id, limit=200)
    (answer,) = [m for m in listed["items"] if m["runId"] == run_id and m["role"] == "assistant"]
    return "".join(p["text"] for p in answer["parts"] if p["type"] == "text")


@pytest.mark.gen_test(timeout=20)
async def test_request_round_trip_and_typed_errors(botical_app, make_user):
    alice = await make_user("alice")
    async with BoticalClient(ws_url(botical_app), alice.token) as client:
        assert client.state is ConnectionState.CONNECTED
        assert client.user_id == alice.id and client.epoch == botical_app.broadcaster.epoch
        described = await client.request("system.describe")
        assert "messages.send" in {m["name"] for m in described["methods"]}
        session_id = await _session(client)
        assert (await client.request("sessions.get", sessionId=session_id))["id"] == session_id

        with pytest.raises(NotFound) as missing:
            await client.request("sessions.get", sessionId=MISSING_SESSION)
        assert (missing.value.code, missing.value.message) == ("NOT_FOUND", "Session not found")

        with pytest.raises(ValidationFailed) as invalid:
            await client.request("messages.send", sessionId=session_id)
        assert invalid.value.code == "VALIDATION_ERROR"
        assert invalid.value.details == {"content": ["Missing data for required field."]}

        with pytest.raises(MethodNotFound) as unknown:
            await client.request("nope.x")
        assert isinstance(unknown.value, ClientError)
        assert (unknown.value.code, unknown.value.message) == (
            "METHOD_NOT_FOUND",
            "Unknown method 'nope.x'",
        )
        # the connection is still usable after errors
        assert (await client.request("subscriptions.list")) == {"items": []}
    assert client.state is ConnectionState.CLOSED


@pytest.mark.gen_test(timeout=20)
async def test_rest_errors_are_typed_too(botical_app, make_user):
    alice = await make_user("alice")
    async with BoticalClient(ws_url(botical_app), alice.token) as client:
        with pytest.raises(NotFound):
            await client.rest("GET", "/api/projects/prj_00000000000000000000000000")
        with pytest.raises(ValidationFailed) as invalid:
            await client.rest("POST", "/api/projects", {})
        assert "name" in invalid.value.details


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_token_raises_unauthorized_at_connect(botical_app):
    client = BoticalClient(ws_url(botical_app), "not-a-token")
    with pytest.raises(Unauthorized):
        await client.connect()
    assert client.state is ConnectionState.CLOSED


@pytest.mark.gen_test(timeout=30)
async def test_a_subscription_streams_the_answer_that_is_stored(botical_app, make_user):
    alice = await make_user("alice")
    async with BoticalClient(ws_url(botical_app), alice.token) as client:
        session_id = await _session(client)
        events = await client.subscribe(f"session:{session_id}")
        sent = await client.request("messages.send", sessionId=session_id, content="Hello there!")
        taken = await _until_run_ends(events, sent["runId"])
        assert {e.channel for e in taken} == {f"session:{session_id}"}
        assert _covered(taken) == list(range(taken[0].seq, taken[-1].seq + 1))
        assert _deltas(taken) == "Hello there!"
        assert await _stored_text(client, session_id, sent["runId"]) == "Hello there!"
        # a second listener on the same channel gets the next answer too, each event once
        second = await client.subscribe(f"session:{session_id}")
        again = await client.request("messages.send", sessionId=session_id, content="Once more")
        first_copy = await _until_run_ends(events, again["runId"])
        second_copy = await _until_run_ends(second, again["runId"])
        assert first_copy == second_copy and _deltas(first_copy) == "Once more"


@pytest.mark.gen_test(timeout=20)
async def test_subscribing_to_a_channel_you_may_not_see_raises_forbidden(botical_app, make_user):
    alice, bob = await make_user("alice"), await make_user("bob")
    async with BoticalClient(ws_url(botical_app), alice.token) as owner:
        session_id = await _session(owner)
    async with BoticalClient(ws_url(botical_app), bob.token) as client:
        with pytest.raises(Forbidden):
            await client.subscribe(f"session:{session_id}")
        assert (await client.request("subscriptions.list")) == {"items": []}


@pytest.mark.gen_test(timeout=20)
async def test_unsubscribe_ends_the_iterator(botical_app, make_user):
    alice = await make_user("alice")
    async with BoticalClient(ws_url(botical_app), alice.token) as client:
        session_id = await _session(client)
        events = await client.subscribe(f"session:{session_id}")
        await client.unsubscribe(f"session:{session_id}")
        assert [e async for e in events] == []
        assert (await client.request("subscriptions.list")) == {"items": []}


@pytest.mark.gen_test(timeout=20)
async def test_in_flight_requests_fail_with_connection_lost_when_the_server_stops(
    botical_app, make_user, blocking
):
    alice = await make_user("alice")
    blocking.started = asyncio.Event()
    states: list[ConnectionState] = []
    client = await _client(botical_app, alice.token, states)
    try:
        in_flight = asyncio.ensure_future(client.request("test.block"))
        await asyncio.wait_for(blocking.started.wait(), 5)
        await botical_app.stop()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(in_flight, 5)  # promptly: no waiting for request_timeout
        assert client.state is ConnectionState.RECONNECTING
        # while nobody answers, a new request fails at its own timeout instead of hanging
        with pytest.raises(Timeout):
            await client.request("system.describe", timeout=0.2)
    finally:
        await client.close()
    assert states == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.RECONNECTING,
        ConnectionState.CLOSED,
    ]


@pytest.mark.gen_test(timeout=30)
async def test_a_dropped_socket_resumes_with_no_event_lost_or_repeated(botical_app, make_user):
    alice = await make_user("alice")
    states: list[ConnectionState] = []
    client = await _client(botical_app, alice.token, states)
    try:
        session = await _new_session(client)
        events = await client.subscribe(f"session:{session['id']}")
        on_state, published = _while_away(botical_app, session)
        client.on_state = on_state
        first_connection = client.connection_id
        sent = await client.request(
            "messages.send", sessionId=session["id"], content=f"/slow {SLOW_WORDS}"
        )
        taken = []
        while _deltas(taken).count("word") < 5:
            taken.append(await events.next(timeout=10))
        client.drop_connection()
        taken += await _until_run_ends(events, sent["runId"])
        assert client.connection_id != first_connection
        assert client.epoch == botical_app.broadcaster.epoch
        assert SYNCED not in {e.event for e in taken}  # replayed from the buffer, not resynced
        (missed,) = published
        assert missed in [e.seq for e in taken if e.event == "session.updated"]
        assert _covered(taken) == list(range(taken[0].seq, taken[-1].seq + 1))
        assert _deltas(taken) == SLOW_WORDS
        assert await _stored_text(client, session["id"], sent["runId"]) == SLOW_WORDS
    finally:
        await client.close()


@pytest.mark.parametrize("botical_overrides", [{"websocket": {"replay_buffer": 0}}])
@pytest.mark.gen_test(timeout=30)
async def test_without_replay_a_resumed_session_is_resynced(botical_app, make_user):
    alice = await make_user("alice")
    client = await _client(botical_app, alice.token)
    try:
        session = await _new_session(client)
        session_id = session["id"]
        events = await client.subscribe(f"session:{session_id}")
        client.on_state, published = _while_away(botical_app, session)
        sent = await client.request(
            "messages.send", sessionId=session_id, content=f"/slow {SLOW_WORDS}"
        )
        before = []
        while _deltas(before).count("word") < 5:
            before.append(await events.next(timeout=10))
        client.drop_connection()
        after = await _until_run_ends(events, sent["runId"])
        (synced,) = [e for e in after if e.event == SYNCED]
        assert synced.channel == f"session:{session_id}"
        assert set(synced.data) == {
            "session",
            "messages",
            "todos",
            "pendingApprovals",
            "status",
            "queue",
            "seq",
        }
        assert synced.seq == synced.data["seq"] >= published[0]
        later = after[after.index(synced) + 1 :]
        assert all(e.seq > synced.seq for e in later)  # nothing at or before the sync's seq
        seqs = [e.seq for e in before + after if e is not synced]
        assert seqs == sorted(set(seqs))  # never an event twice
        # the sync state, the later deltas and the closing part.updated give the stored text
        closing = [
            e
            for e in after
            if e.event == "part.updated" and e.data["part"].get("status") == "completed"
        ]
        stored = await _stored_text(client, session_id, sent["runId"])
        assert stored == SLOW_WORDS
        assert closing and closing[-1].data["part"]["text"] == stored
    finally:
        await client.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_revoked_token_closes_the_client_for_good(botical_app, make_user):
    alice = await make_user("alice")
    states: list[ConnectionState] = []
    client = await _client(botical_app, alice.token, states)
    session_id = await _session(client)
    events = await client.subscribe(f"session:{session_id}")
    await botical_app.tokens.revoke(alice.token)
    await botical_app.lifecycle.revalidate()
    with pytest.raises(Unauthorized):
        await events.next(timeout=5)
    assert client.state is ConnectionState.CLOSED
    assert states[-2:] == [ConnectionState.CONNECTED, ConnectionState.CLOSED]  # no reconnect
    assert client.close_code == 4001
    with pytest.raises(Unauthorized):
        await client.request("system.describe")
    await client.close()
