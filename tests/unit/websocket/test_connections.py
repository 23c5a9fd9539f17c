"""Connection (bounded queue, one writer, merging, 4008), TokenBucket and ConnectionRegistry."""

from __future__ import annotations

import asyncio
import json

import pytest

from botical.websocket.connections import ConnectionRegistry, TokenBucket
from botical.websocket.protocol import CLOSE_TOO_SLOW, delta_frame
from tests.unit.websocket.fakes import FakeTransport, make_connection

HEADER = json.dumps({"id": "part_1", "type": "text", "status": "streaming"})
CHANNEL = "session:sess_1"


def _delta(conn, seq: int, delta: str, part_id: str = "part_1", channel: str = CHANNEL) -> None:
    header = json.dumps({"id": part_id, "type": "text"})
    text = delta_frame(channel, header, delta, seq, seq)
    conn.send_delta(channel, part_id, header, delta, seq, text)


async def _stalled(started, **limits):
    """A started connection whose writer is stuck writing a first frame that never completes."""
    transport = FakeTransport(stalled=True)
    conn = started(make_connection(transport, **limits))
    conn.send("blocker")
    await transport.wait_written(1)
    return conn, transport


# --- Connection: writing ---


@pytest.mark.gen_test
async def test_frames_are_written_in_order(started):
    transport = FakeTransport()
    conn = make_connection(transport)
    started(conn)
    for text in ("a", "b", "c"):
        conn.send(text)
    assert await transport.wait_written(3) == ["a", "b", "c"]
    conn.send("d")
    assert await transport.wait_written(4) == ["a", "b", "c", "d"]
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_a_client_that_stops_reading_makes_the_queue_grow(started):
    conn, transport = await _stalled(
        started,
    )
    for text in ("one", "two", "three"):
        conn.send(text)
    assert conn.queued == (3, len("one") + len("two") + len("three"))
    assert transport.written == ["blocker"]
    transport.release()
    assert await transport.wait_written(4) == ["blocker", "one", "two", "three"]
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_deltas_do_not_merge_below_half_the_limit(started):
    conn, transport = await _stalled(started, queue_max_messages=10)
    for seq, delta in enumerate("abcde", start=1):
        _delta(conn, seq, delta)
    assert conn.queued[0] == 5
    transport.release()
    frames = [json.loads(t) for t in (await transport.wait_written(6))[1:]]
    assert [(f["seq"], f["data"]["delta"]) for f in frames] == list(
        zip(range(1, 6), "abcde", strict=True)
    )
    assert all("mergedFrom" not in f for f in frames)


@pytest.mark.gen_test
async def test_deltas_of_one_part_merge_with_the_tail_under_pressure(started):
    conn, transport = await _stalled(started, queue_max_messages=10)
    for seq, delta in enumerate("abcdef", start=1):  # 6 queued: past half of 10
        _delta(conn, seq, delta)
    assert conn.queued[0] == 6
    for seq, delta in zip(range(7, 10), ["g", "hh", "i"], strict=True):
        _delta(conn, seq, delta)
        assert conn.queued[0] == 6
    assert not conn.closed
    transport.release()
    frames = [json.loads(t) for t in (await transport.wait_written(7))[1:]]
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5, 9]
    merged = frames[-1]
    assert merged == {
        "type": "event",
        "channel": CHANNEL,
        "event": "part.updated",
        "data": {"part": {"id": "part_1", "type": "text"}, "delta": "fghhi"},
        "seq": 9,
        "mergedFrom": 6,
    }
    assert "".join(f["data"]["delta"] for f in frames) == "abcdefghhi"


@pytest.mark.gen_test
async def test_byte_pressure_also_merges(started):
    one = len(delta_frame(CHANNEL, json.dumps({"id": "part_1", "type": "text"}), "x", 1, 1))
    conn, transport = await _stalled(started, queue_max_messages=1000, queue_max_bytes=one * 5)
    for seq in range(1, 4):  # 3 frames: more than half of 5 frames' bytes
        _delta(conn, seq, "x")
    _delta(conn, 4, "y")
    assert conn.queued[0] == 3
    transport.release()
    last = json.loads((await transport.wait_written(4))[-1])
    assert (last["seq"], last["mergedFrom"], last["data"]["delta"]) == (4, 3, "xy")


@pytest.mark.gen_test
async def test_only_a_queued_delta_of_the_same_part_and_channel_is_merged(started):
    conn, _ = await _stalled(started, queue_max_messages=10)
    for i in range(6):
        conn.send(f"plain {i}")
    steps = [
        ("part_1", CHANNEL, 7),  # the tail is a plain frame
        ("part_1", CHANNEL, 7),  # merges
        ("part_2", CHANNEL, 8),  # another part
        ("part_2", "session:sess_2", 9),  # same part id, another channel
        ("part_2", "session:sess_2", 9),  # merges
    ]
    for seq, (part_id, channel, queued) in enumerate(steps, start=1):
        _delta(conn, seq, "d", part_id, channel)
        assert conn.queued[0] == queued, (seq, part_id, channel)
    assert not conn.closed


# --- Connection: limits and closing ---


@pytest.mark.gen_test
async def test_too_many_queued_frames_closes_with_4008_and_drops_the_queue(started):
    conn, transport = await _stalled(started, queue_max_messages=3)
    for text in ("a", "b", "c"):
        conn.send(text)
    assert (conn.queued[0], conn.closed) == (3, False)
    conn.send("d")
    assert conn.closed
    assert [code for code, _ in transport.closes] == [CLOSE_TOO_SLOW]
    assert conn.queued == (0, 0)
    conn.send("e")
    assert conn.queued == (0, 0)
    assert transport.written == ["blocker"]


@pytest.mark.gen_test
async def test_one_frame_larger_than_the_byte_bound_is_still_sent(started):
    conn, _ = await _stalled(started, queue_max_bytes=100)
    conn.send("x" * 500)
    assert not conn.closed
    assert conn.queued == (1, 500)  # waiting behind the blocker being written


@pytest.mark.gen_test
async def test_too_many_queued_bytes_closes_with_4008(started):
    conn, transport = await _stalled(started, queue_max_bytes=100)
    conn.send("x" * 60)
    conn.send("y" * 41)
    assert not conn.closed  # only bytes already waiting count, not the newest frame's own
    conn.send("z")
    assert conn.closed
    assert [code for code, _ in transport.closes] == [CLOSE_TOO_SLOW]
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_merged_deltas_still_count_against_the_byte_limit(started):
    one = len(delta_frame(CHANNEL, json.dumps({"id": "part_1", "type": "text"}), "x", 1, 1))
    conn, transport = await _stalled(started, queue_max_bytes=one * 4)
    for seq in range(1, 4):
        _delta(conn, seq, "x")
    assert not conn.closed
    _delta(conn, 4, "z" * one * 2)  # merged into the tail, but the bytes still add up
    assert conn.closed
    assert [code for code, _ in transport.closes] == [CLOSE_TOO_SLOW]
    assert conn.queued == (0, 0)


def test_close_is_idempotent():
    transport = FakeTransport()
    conn = make_connection(transport)
    conn.close(CLOSE_TOO_SLOW, "slow")
    conn.close(1001, "shutdown")
    assert transport.closes == [(CLOSE_TOO_SLOW, "slow")]
    assert conn.closed


def test_close_survives_a_transport_that_is_already_closed():
    class Broken(FakeTransport):
        def close(self, code=None, reason=None):
            raise RuntimeError("stream closed")

    conn = make_connection(Broken())
    conn.close(1001, "shutdown")
    assert conn.closed


@pytest.mark.gen_test
async def test_discard_cancels_in_flight_requests_and_stops_sending(started):
    transport = FakeTransport()
    conn = make_connection(transport)
    started(conn)
    never = asyncio.get_running_loop().create_future()
    tasks = [asyncio.ensure_future(asyncio.shield(never)) for _ in range(2)]
    conn.inflight.update(tasks)
    conn.discard()
    done, pending = await asyncio.wait(tasks, timeout=5)
    assert not pending
    assert all(task.cancelled() for task in done)
    conn.send("after")
    assert conn.queued == (0, 0)
    assert transport.closes == []  # the socket is already gone; nothing to close
    assert not never.cancelled()


@pytest.mark.gen_test
async def test_flush_waits_until_everything_is_written(started):
    transport = FakeTransport()
    conn = make_connection(transport)
    started(conn)
    texts = [f"frame {i}" for i in range(5)]
    for text in texts:
        conn.send(text)
    await conn.flush(5)
    assert transport.written == texts
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_flush_is_bounded_when_the_client_does_not_read(started):
    conn, transport = await _stalled(
        started,
    )
    conn.send("queued")
    await conn.flush(0.01)
    assert conn.queued[0] == 1
    assert transport.written == ["blocker"]


# --- TokenBucket ---


def test_token_bucket_allows_a_burst_then_refuses():
    bucket = TokenBucket(rate=0.001, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_token_bucket_refills_at_its_rate_up_to_the_burst():
    bucket = TokenBucket(rate=1.0, burst=5)
    assert all(bucket.take() for _ in range(5))
    assert not bucket.take()
    bucket.stamp -= 2.0  # as if two seconds had passed
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    bucket.stamp -= 1000.0
    assert sum(bucket.take() for _ in range(10)) == 5


# --- ConnectionRegistry ---


def test_registry_add_get_remove():
    registry = ConnectionRegistry()
    a, b = make_connection(), make_connection(user_id="usr_bob")
    registry.add(a)
    registry.add(b)
    assert len(registry) == 2
    assert registry.get(a.id) is a
    assert set(registry) == {a, b}
    registry.remove(a)
    assert registry.get(a.id) is None
    assert list(registry) == [b]
    registry.remove(a)  # twice is harmless
    assert len(registry) == 1


def test_registry_counts_connections_per_user():
    registry = ConnectionRegistry()
    first, second = make_connection(user_id="usr_a"), make_connection(user_id="usr_a")
    other = make_connection(user_id="usr_b")
    for conn in (first, second, other):
        registry.add(conn)
    assert (registry.count_for_user("usr_a"), registry.count_for_user("usr_b")) == (2, 1)
    assert registry.count_for_user("usr_nobody") == 0
    registry.remove(first)
    assert registry.count_for_user("usr_a") == 1


def test_registry_subscribe_and_unsubscribe():
    registry = ConnectionRegistry()
    a, b = make_connection(), make_connection()
    registry.add(a)
    registry.add(b)
    registry.subscribe(a, "session:s1")
    registry.subscribe(b, "session:s1")
    registry.subscribe(a, "project:p1")
    registry.subscribe(a, "project:p1")  # twice counts once
    assert set(registry.subscribers("session:s1")) == {a, b}
    assert registry.subscribers("project:p1") == (a,)
    assert list(a.subscriptions) == ["session:s1", "project:p1"]
    registry.unsubscribe(a, "session:s1")
    assert registry.subscribers("session:s1") == (b,)
    assert list(a.subscriptions) == ["project:p1"]
    registry.unsubscribe(b, "session:s1")
    assert registry.subscribers("session:s1") == ()
    assert registry.channels() == ["project:p1"]
    registry.unsubscribe(b, "session:never")  # not subscribed: harmless
    assert registry.subscribers("nobody:here") == ()


def test_registry_remove_cleans_every_channel_and_user_map():
    registry = ConnectionRegistry()
    a, b = make_connection(user_id="usr_a"), make_connection(user_id="usr_b")
    registry.add(a)
    registry.add(b)
    for channel in ("session:s1", "project:p1", "user:usr_a"):
        registry.subscribe(a, channel)
    registry.subscribe(b, "project:p1")
    registry.remove(a)
    assert registry.channels() == ["project:p1"]
    assert registry.subscribers("project:p1") == (b,)
    assert registry.count_for_user("usr_a") == 0
    assert "usr_a" not in registry._by_user  # no empty map left behind
    assert "session:s1" not in registry._by_channel
    registry.remove(b)
    assert registry.channels() == []
    assert (registry._by_id, registry._by_user, registry._by_channel) == ({}, {}, {})
