"""The hot paths the benchmarks tuned (bench/NOTES.md) keep their contracts: pings and requests
skip the frame schema only when the schema would load them unchanged; a frame for an idle
connection is written at once, otherwise frames queue in order; the writer hands queued frames
to the socket in bounded batches."""

from __future__ import annotations

import asyncio

import pytest

from botical.schema import quick_loader
from botical.websocket.connections import WRITE_BATCH
from botical.websocket.protocol import FRAME_SCHEMAS
from tests.unit.websocket.fakes import FakeTransport, make_connection

FRAMES = [
    {"type": "ping"},
    {"type": "ping", "id": "p1"},
    {"type": "ping", "id": "x" * 128},
    {"type": "request", "id": "r1", "method": "sessions.get"},
    {"type": "request", "id": "r1", "method": "sessions.get", "params": {"sessionId": "s"}},
    {"type": "request", "id": "r1", "method": "m", "params": {}},
]
REFUSED = [
    {"type": "ping", "id": ""},
    {"type": "ping", "id": None},
    {"type": "ping", "id": 7},
    {"type": "ping", "id": "x" * 129},
    {"type": "ping", "extra": 1},
    {"type": "request", "id": "r1"},
    {"type": "request", "method": "m"},
    {"type": "request", "id": "r1", "method": "m", "params": None},
    {"type": "request", "id": "r1", "method": "m", "params": []},
    {"type": "request", "id": "r1", "method": "", "params": {}},
    {"type": "request", "id": ["r1"], "method": "m"},
    {"type": "request", "id": "r1", "method": "m", "extra": True},
]


def _quick(frame):
    return quick_loader(FRAME_SCHEMAS[frame["type"]])(frame)


@pytest.mark.parametrize("frame", FRAMES)
def test_well_formed_frames_load_as_the_schema_loads_them(frame):
    assert _quick(frame) == FRAME_SCHEMAS[frame["type"]].load(frame)


@pytest.mark.parametrize("frame", REFUSED)
def test_anything_else_goes_through_the_schema(frame):
    assert _quick(frame) is None


@pytest.mark.gen_test
async def test_the_writer_hands_over_at_most_a_batch_before_waiting(started):
    transport = FakeTransport(stalled=True)
    conn = make_connection(transport)
    big = "x" * (WRITE_BATCH // 2 + 1)
    for _ in range(3):
        conn.send(big)
    started(conn)
    await transport.wait_written(2)
    assert len(transport.written) == 2  # the third waits in the queue, bounded and mergeable
    assert conn.queued == (1, len(big))
    transport.release()
    await transport.wait_written(3)
    assert conn.queued == (0, 0)


async def _idle(started, transport):
    conn = started(make_connection(transport))
    for _ in range(3):  # let the writer start and park
        await asyncio.sleep(0)
    return conn


@pytest.mark.gen_test
async def test_a_frame_for_an_idle_connection_is_written_in_the_same_tick(started):
    transport = FakeTransport()
    conn = await _idle(started, transport)
    conn.send("now")
    assert transport.written == ["now"]  # no await in between: not left for the writer
    conn.send("again")  # the socket took "now": this one goes at once too
    assert transport.written == ["now", "again"]
    assert conn.queued == (0, 0)


@pytest.mark.gen_test
async def test_while_tornado_holds_unsent_bytes_frames_queue_in_order(started):
    transport = FakeTransport(stalled=True)
    conn = await _idle(started, transport)
    conn.send("first")  # written at once, never confirmed while stalled
    conn.send("second")
    conn.send("third")
    assert transport.written == ["first"]
    assert conn.queued == (2, len("second") + len("third"))
    transport.release()
    assert await transport.wait_written(3) == ["first", "second", "third"]
