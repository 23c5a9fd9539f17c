"""What metrics cost a streamed delta, in process, without sockets or a shared machine's noise.

    .venv/bin/python bench/metrics_overhead.py [--deltas 2000] [--rounds 5]

The real bus and broadcaster fan `part.updated` deltas out to N real `Connection`s whose
transport takes every frame at once (a done future, as Tornado's is when the kernel took the
bytes), with the metrics of an app off and on, alternating rounds. It prints the CPU time per
delta of each and their ratio: what `bench/run.py --metrics` measures end to end, minus the
kernel, the load generator and the other processes of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botical.auth.identity import Identity
from botical.bus import Event, EventBus
from botical.config import WebSocketSettings
from botical.metrics import Metrics
from botical.websocket.broadcaster import ChannelKind
from botical.websocket.connections import Connection, ConnectionRegistry


class Taken:
    """A transport whose every write is done at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done = loop.create_future()
        self.done.set_result(None)

    def write_message(self, message: str) -> asyncio.Future[None]:
        return self.done

    def writing(self) -> bool:
        return False

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass


async def stream(metrics: Metrics, subscribers: int, deltas: int) -> float:
    """CPU seconds per delta of one streamed answer to `subscribers` connections."""
    bus = EventBus()
    bus.metrics = metrics
    registry = ConnectionRegistry()
    kind = ChannelKind("session", lambda e: [e.session_id] if e.session_id else [], lambda *a: None)
    router = bus.broadcaster(registry, [kind], WebSocketSettings())
    router.start()
    loop = asyncio.get_running_loop()
    for n in range(subscribers):
        who = Identity(f"usr_{n}", "u", False, False, "token", f"jti_{n}")
        connection = Connection(f"conn_{n}", who, Taken(loop), WebSocketSettings(), metrics.merged)
        registry.add(connection)
        registry.subscribe(connection, "session:s")
        connection.start()
    await asyncio.sleep(0)  # every writer parks: frames are written in the publishing tick
    part = {"id": "part_1", "messageId": "msg_1", "type": "text", "status": "streaming"}
    started = time.process_time()
    for n in range(deltas):
        data = {"part": part, "delta": f"word{n} "}
        bus.publish(Event("part.updated", data, project_id="prj_1", session_id="s"))
        await asyncio.sleep(0)  # a loop iteration per delta, as the echo stream gives
    spent = time.process_time() - started
    for connection in registry:
        connection.discard()
    return spent / deltas


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--subscribers", default="1,100,1000")
    args = parser.parse_args(argv)
    print("| subscribers | off: us per delta | on: us per delta | on / off |")
    print("|---|---|---|---|")
    for count in (int(n) for n in args.subscribers.split(",")):
        off, on = [], []
        for n in range(args.rounds):  # which goes first alternates too
            for enabled in (n % 2 == 0, n % 2 == 1):
                spent = await stream(Metrics.create(enabled), count, args.deltas)
                (on if enabled else off).append(spent)
        a, b = statistics.median(off) * 1e6, statistics.median(on) * 1e6
        print(f"| {count:,} | {a:.1f} | {b:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    asyncio.run(main())
