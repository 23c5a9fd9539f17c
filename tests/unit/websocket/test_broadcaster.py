"""Broadcaster: bus events -> built-in channels, seq per channel, one serialization per channel,
replay buffer and the bound on tracked channels. Real EventBus and registry; fake sockets."""

from __future__ import annotations

import json

import pytest

from botical.bus import Event, EventBus
from botical.websocket.broadcaster import Broadcaster
from botical.websocket.channels import BUILTIN_CHANNELS
from botical.websocket.connections import ConnectionRegistry
from tests.unit.websocket.fakes import FakeTransport, make_connection

PRJ, SESS, USR = "prj_1", "sess_1", "usr_1"
S, P, U = f"session:{SESS}", f"project:{PRJ}", f"user:{USR}"

# DESIGN.md section 3, "Channels and events": where each built-in event goes.
ROUTES = {
    "message.created": {S},
    "message.updated": {S},
    "part.created": {S},
    "part.updated": {S},
    "session.created": {P},
    "session.updated": {S, P},
    "tool.approval_required": {S, U},
    "tool.approval_resolved": {S},
    "agent.status_changed": {S, P},
    "todo.updated": {S},
    "member.added": {U},
    "member.updated": {U},
    "member.removed": {U},
    "project.deleted": {U},
    "project.created": {U},
    "project.updated": set(),
    "something.else": set(),
}


class Setup:
    def __init__(
        self,
        started=None,
        replay_size: int = 100,
        max_channels: int = 1000,
        replay_bytes: int = 1 << 30,
    ) -> None:
        self.started = started
        self.bus = EventBus()
        self.registry = ConnectionRegistry()
        self.broadcaster = Broadcaster(
            self.bus, self.registry, BUILTIN_CHANNELS, replay_size, max_channels, replay_bytes
        )
        self.broadcaster.start()

    def client(self, *channels: str) -> tuple[object, FakeTransport]:
        transport = FakeTransport()
        conn = make_connection(transport)
        self.registry.add(conn)
        self.started(conn)
        for channel in channels:
            self.broadcaster.attach(conn, channel, None)
        return conn, transport

    def publish(self, name: str, data: dict | None = None, **scope: str) -> None:
        self.bus.publish(Event(name, data if data is not None else {"n": name}, **scope))

    def on_session(self, n: int, session_id: str = SESS) -> None:
        """Publish `n` message.created events that go to one session channel only."""
        for i in range(n):
            self.publish("message.created", {"i": i}, session_id=session_id)


def _frames(texts: list[str]) -> list[dict]:
    return [json.loads(t) for t in texts]


@pytest.mark.parametrize(("name", "channels"), sorted(ROUTES.items()))
def test_each_builtin_event_goes_to_its_channels(name, channels):
    setup = Setup()
    event = Event(name, {}, project_id=PRJ, session_id=SESS, user_id=USR)
    assert set(setup.broadcaster.channels_for(event)) == channels


def test_an_event_without_a_scope_goes_nowhere():
    setup = Setup()
    assert setup.broadcaster.channels_for(Event("message.created", {}, project_id=PRJ)) == []


@pytest.mark.gen_test
async def test_subscribers_receive_each_event_once_per_channel_in_order(started):
    setup = Setup(started)
    _, on_session = setup.client(S)
    _, on_both = setup.client(S, P)
    scope = {"project_id": PRJ, "session_id": SESS, "user_id": USR}
    setup.publish("session.created", {"session": {"id": SESS}}, **scope)
    setup.publish("session.updated", {"session": {"id": SESS}}, **scope)
    setup.publish("message.created", {"message": {"id": "msg_1"}}, **scope)
    session_frames = _frames(await on_session.wait_written(2))
    assert [(f["channel"], f["event"], f["seq"]) for f in session_frames] == [
        (S, "session.updated", 1),
        (S, "message.created", 2),
    ]
    both = _frames(await on_both.wait_written(4))
    assert [(f["channel"], f["event"], f["seq"]) for f in both] == [
        (P, "session.created", 1),
        (S, "session.updated", 1),
        (P, "session.updated", 2),
        (S, "message.created", 2),
    ]
    assert both[0]["data"] == {"session": {"id": SESS}}


@pytest.mark.gen_test
async def test_seq_increases_by_one_per_channel(started):
    setup = Setup(started)
    _, transport = setup.client(S, "session:sess_2", P)
    for _ in range(3):
        setup.publish("message.created", session_id=SESS, project_id=PRJ)
        setup.publish("part.created", session_id="sess_2", project_id=PRJ)
    setup.publish("agent.status_changed", session_id=SESS, project_id=PRJ)
    frames = _frames(await transport.wait_written(8))
    by_channel: dict[str, list[int]] = {}
    for frame in frames:
        by_channel.setdefault(frame["channel"], []).append(frame["seq"])
    assert by_channel == {S: [1, 2, 3, 4], "session:sess_2": [1, 2, 3], P: [1]}
    assert setup.broadcaster.seq(S) == 4
    assert setup.broadcaster.seq("session:unknown") == 0


@pytest.mark.gen_test
async def test_an_event_is_serialized_once_per_channel_not_per_subscriber(started):
    setup = Setup(started)
    _, first = setup.client(S, P)
    _, second = setup.client(S, P)
    setup.publish("agent.status_changed", {"status": "thinking"}, session_id=SESS, project_id=PRJ)
    a = await first.wait_written(2)
    b = await second.wait_written(2)
    assert a[0] is b[0]
    assert a[1] is b[1]
    assert a[0] != a[1]  # one frame per channel


@pytest.mark.gen_test
async def test_delta_events_carry_only_the_delta(started):
    setup = Setup(started)
    _, first = setup.client(S)
    _, second = setup.client(S)
    header = {"id": "part_1", "type": "text", "status": "streaming"}
    for word in ("Hello ", "big ", "world"):
        setup.publish("part.updated", {"part": header, "delta": word}, session_id=SESS)
    frames = _frames(await first.wait_written(3))
    assert [f["data"] for f in frames] == [
        {"part": header, "delta": "Hello "},
        {"part": header, "delta": "big "},
        {"part": header, "delta": "world"},
    ]
    assert [(f["event"], f["seq"]) for f in frames] == [("part.updated", n) for n in (1, 2, 3)]
    assert all("mergedFrom" not in f for f in frames)
    assert (await second.wait_written(3))[2] is first.written[2]


@pytest.mark.gen_test
async def test_a_whole_part_update_is_an_ordinary_event(started):
    setup = Setup(started)
    _, transport = setup.client(S)
    part = {"id": "part_1", "type": "text", "status": "completed", "text": "Hello world"}
    setup.publish("part.updated", {"part": part}, session_id=SESS)
    (frame,) = _frames(await transport.wait_written(1))
    assert frame["data"] == {"part": part}


@pytest.mark.gen_test
async def test_attach_with_since_replays_what_was_missed_in_order(started):
    setup = Setup(started)
    setup.on_session(5)
    conn, transport = setup.client()
    assert setup.broadcaster.attach(conn, S, 2) is True
    setup.on_session(1)
    frames = _frames(await transport.wait_written(4))
    assert [(f["seq"], f["data"]["i"]) for f in frames] == [(3, 2), (4, 3), (5, 4), (6, 0)]
    assert setup.registry.subscribers(S) == (conn,)


@pytest.mark.gen_test
async def test_replay_includes_deltas(started):
    setup = Setup(started)
    header = {"id": "part_1", "type": "text"}
    setup.publish("part.updated", {"part": header, "delta": "a"}, session_id=SESS)
    setup.publish("part.updated", {"part": header, "delta": "b"}, session_id=SESS)
    conn, transport = setup.client()
    assert setup.broadcaster.attach(conn, S, 0) is True
    frames = _frames(await transport.wait_written(2))
    assert [(f["seq"], f["data"]["delta"]) for f in frames] == [(1, "a"), (2, "b")]


@pytest.mark.gen_test
async def test_events_nobody_subscribed_to_are_buffered_for_replay(started):
    setup = Setup(started)
    setup.on_session(3)
    assert setup.registry.subscribers(S) == ()
    conn, transport = setup.client()
    assert setup.broadcaster.attach(conn, S, 0) is True
    assert [f["seq"] for f in _frames(await transport.wait_written(3))] == [1, 2, 3]


def test_since_equal_to_current_is_recovered_with_nothing_to_replay():
    setup = Setup()
    setup.on_session(3)
    conn = make_connection()
    assert setup.broadcaster.attach(conn, S, 3) is True
    assert conn.queued == (0, 0)
    fresh = make_connection()
    assert setup.broadcaster.attach(fresh, "session:quiet", 0) is True
    assert fresh.queued == (0, 0)


def test_since_beyond_the_current_seq_is_not_recovered():
    setup = Setup()
    setup.on_session(3)
    conn = make_connection()
    assert setup.broadcaster.attach(conn, S, 4) is False
    assert conn.queued == (0, 0)
    assert setup.registry.subscribers(S) == (conn,)  # subscribed all the same


def test_a_gap_older_than_the_buffer_is_not_recovered():
    setup = Setup(replay_size=3)
    setup.on_session(6)  # the buffer keeps seq 4, 5, 6
    conn = make_connection()
    assert setup.broadcaster.attach(conn, S, 2) is False
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_a_gap_the_buffer_still_covers_is_recovered(started):
    setup = Setup(started, replay_size=3)
    setup.on_session(6)
    conn, transport = setup.client()
    assert setup.broadcaster.attach(conn, S, 3) is True
    assert [f["seq"] for f in _frames(await transport.wait_written(3))] == [4, 5, 6]


def _big(setup: Setup, session_id: str, count: int, size: int = 10_000) -> None:
    for i in range(count):
        setup.publish("message.created", {"i": i, "pad": "x" * size}, session_id=session_id)


def test_replay_buffers_together_stay_within_their_memory_bound():
    setup = Setup(replay_bytes=100_000)
    _big(setup, "sess_a", 5)  # ~50 KB
    _big(setup, "sess_b", 5)  # ~100 KB in all: at the bound
    assert setup.broadcaster.buffered_bytes <= 100_000
    _big(setup, "sess_b", 3)  # sess_a buffered least recently: its oldest go first
    assert setup.broadcaster.buffered_bytes <= 100_000
    a, b = make_connection(), make_connection()
    assert setup.broadcaster.attach(a, "session:sess_a", 0) is False  # lost its first events
    assert setup.broadcaster.attach(b, "session:sess_b", 0) is True
    assert b.queued[0] == 8
    newest_a = make_connection()
    assert setup.broadcaster.attach(newest_a, "session:sess_a", 4) is True  # nothing missed


def test_a_forgotten_channel_gives_back_its_replay_memory():
    setup = Setup(max_channels=10, replay_bytes=1 << 30)
    _big(setup, "sess_a", 3)
    held = setup.broadcaster.buffered_bytes
    assert held > 30_000
    for i in range(10):  # ten newer channels push sess_a out
        setup.on_session(1, f"sess_{i}")
    small = setup.broadcaster.buffered_bytes
    assert small < 5_000  # only the ten small events are left
    assert setup.broadcaster.seq("session:sess_a") >= 3  # seq floor kept, buffer gone


def test_one_event_larger_than_the_bound_is_not_kept():
    setup = Setup(replay_bytes=5_000)
    setup.on_session(2)
    _big(setup, SESS, 1)
    assert setup.broadcaster.buffered_bytes == 0
    assert setup.broadcaster.attach(make_connection(), S, 2) is False


def test_without_a_replay_buffer_nothing_is_replayed():
    setup = Setup(replay_size=0)
    setup.on_session(3)
    conn = make_connection()
    assert setup.broadcaster.attach(conn, S, 1) is False
    assert setup.broadcaster.attach(make_connection(), S, 0) is False
    assert conn.queued == (0, 0)
    assert setup.broadcaster.seq(S) == 3  # seq is still counted


def test_attach_without_since_subscribes_without_replay():
    setup = Setup()
    setup.on_session(2)
    conn = make_connection()
    assert setup.broadcaster.attach(conn, S, None) is False
    assert conn.queued == (0, 0)
    assert list(conn.subscriptions) == [S]


def test_the_least_recently_used_channel_is_forgotten():
    setup = Setup(max_channels=2)
    setup.on_session(1, "sess_a")
    setup.on_session(1, "sess_b")
    setup.on_session(1, "sess_a")  # a is now more recent than b
    setup.on_session(1, "sess_c")
    seqs = {c: setup.broadcaster.seq(f"session:{c}") for c in ("sess_a", "sess_b", "sess_c")}
    # a forgotten channel counts on from the highest seq ever forgotten, never from 0 again
    assert seqs == {"sess_a": 2, "sess_b": 1, "sess_c": 1}
    conn = make_connection()
    assert setup.broadcaster.attach(conn, "session:sess_b", 0) is False  # its event 1 is gone


def test_a_channel_created_again_never_reuses_a_seq():
    setup = Setup(max_channels=2)
    setup.on_session(5, "sess_a")
    setup.on_session(1, "sess_b")
    setup.on_session(1, "sess_c")  # a (seq 5) is forgotten
    setup.on_session(1, "sess_a")  # a again: seq 6, not 1
    assert setup.broadcaster.seq("session:sess_a") == 6
    conn = make_connection()
    assert setup.broadcaster.attach(conn, "session:sess_a", 1) is False


@pytest.mark.gen_test
async def test_stop_detaches_from_the_bus():
    setup = Setup()
    setup.on_session(1)
    await setup.broadcaster.stop()
    setup.on_session(1)
    assert setup.broadcaster.seq(S) == 1
