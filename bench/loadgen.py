"""The load generator: a process of its own, driven by bench/run.py.

    python bench/loadgen.py SPEC.json     prints one JSON result on stdout

SPEC: {"scenario": "roundtrip" | "fanout" | "slow" | "connections", "targets": [TARGET, ...],
...scenario parameters}. TARGET: {"name", "kind": "baseline" | "botical", "host", "port",
"path" (with ?token= for Botical), "pid" (the server's, for CPU and RSS), "project", "session"}.

Every figure it reports comes with the CPU time this process and the server used over the
same wall time (`cpu`): a load generator near one full core would be the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from fanout import fanout_repeated, open_many
from helpers import run_helper
from measure import Meter, percentile, raise_open_files, rss_kib
from slow import slow_consumer
from wire import WsClient, connect

# -- scenario 1: round trips on one connection ------------------------------------------------


class RoundTrip(WsClient):
    """Keeps `depth` requests in flight until a deadline; answers are matched by id."""

    def begin(self, make_frame: Any, depth: int, seconds: float) -> asyncio.Future[None]:
        self.make_frame = make_frame
        self.deadline = time.monotonic_ns() + int(seconds * 1e9)
        self.sent: dict[bytes, int] = {}
        self.latencies: list[int] = []
        self.errors = 0
        self.count = getattr(self, "count", 0)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for _ in range(depth):
            self._send()
        return self.done

    def _send(self) -> None:
        self.count += 1
        frame_id = str(self.count).encode()
        self.sent[frame_id] = time.monotonic_ns()
        self.send_text(self.make_frame(frame_id))

    def on_text(self, payload: bytes, t_ns: int) -> None:
        start = payload.find(b'"id":"') + 6
        end = payload.find(b'"', start)
        sent = self.sent.pop(payload[start:end], None)
        if sent is None:
            return  # not an answer to us (an event)
        if payload.startswith(b',"error":', end + 1):
            self.errors += 1
        self.latencies.append(t_ns - sent)
        if t_ns < self.deadline:
            self._send()
        elif not self.sent and not self.done.done():
            self.done.set_result(None)


def frame_maker(kind: str, session: str | None) -> Any:
    if kind == "ping":
        return lambda frame_id: b'{"type":"ping","id":"' + frame_id + b'"}'
    params = json.dumps({"sessionId": session, "includeMessages": True}).encode()
    head = b'{"type":"request","id":"'
    tail = b'","method":"sessions.get","params":' + params + b"}"
    return lambda frame_id: head + frame_id + tail


async def roundtrip(spec: dict[str, Any]) -> dict[str, Any]:
    """Alternate blocks of `block_s` seconds between the targets, `blocks` per target."""
    targets = spec["targets"]
    clients = [
        await connect(RoundTrip, t["host"], t["port"], t["path"], wait_first=True) for t in targets
    ]
    makers = [frame_maker(spec["kind"], t.get("session")) for t in targets]
    meters = [Meter(t["pid"]) for t in targets]
    samples: list[list[int]] = [[] for _ in targets]
    errors = [0] * len(targets)
    for block in range(spec["blocks"] + 1):  # block 0 warms up and is not counted
        for i, client in enumerate(clients):
            seconds = spec["warmup_s"] if block == 0 else spec["block_s"]
            if block == 0:
                await client.begin(makers[i], spec["depth"], seconds)
                continue
            with meters[i]:
                await asyncio.wait_for(
                    client.begin(makers[i], spec["depth"], seconds), seconds + 30
                )
            samples[i].extend(client.latencies)
            errors[i] += client.errors
    for client in clients:
        client.close()
    out = {}
    for i, target in enumerate(targets):
        lat, meter = samples[i], meters[i]
        out[target["name"]] = {
            "requests": len(lat),
            "errors": errors[i],
            "p50_us": round(percentile(lat, 50) / 1e3, 1),
            "p99_us": round(percentile(lat, 99) / 1e3, 1),
            "req_per_s": round(len(lat) / meter.wall) if meter.wall else 0,
            "cpu": meter.summary(),
        }
    return out


# -- scenario 3: idle authenticated connections ------------------------------------------------


class Idle(WsClient):
    def on_text(self, payload: bytes, t_ns: int) -> None:
        if payload.startswith(b'{"type":"pong"'):
            self.pongs = getattr(self, "pongs", 0) + 1


async def ping_round(clients: list[Idle], timeout: float) -> int:
    """Send an app-level ping on every open socket; return how many answered in time."""
    before = {id(c): getattr(c, "pongs", 0) for c in clients}
    for client in clients:
        if not client.closed.done():
            client.send_text(b'{"type":"ping"}')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = sum(getattr(c, "pongs", 0) > before[id(c)] for c in clients)
        if answered == len(clients):
            break
        await asyncio.sleep(0.05)
    return sum(getattr(c, "pongs", 0) > before[id(c)] for c in clients)


async def grow(target: dict[str, Any], held: list[Idle], count: int, parallel: int) -> dict:
    """Open sockets until `count` are held; time it and read the server's RSS after."""
    started = time.monotonic()
    try:
        held.extend(await open_many(Idle, target, count - len(held), parallel))
        error = None
    except Exception as exc:  # e.g. EMFILE or a refused upgrade: report, do not hide
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    return {"open_s": round(elapsed, 3), "error": error, "rss_kib": rss_kib(target["pid"])}


async def hold(clients: list[Idle], seconds: float, every: float, timeout: float) -> list[int]:
    """Keep the sockets open for `seconds`, with an app-level ping round every `every` s."""
    rounds = []
    started = time.monotonic()
    while (left := seconds - (time.monotonic() - started)) > 0:
        await asyncio.sleep(min(every, left))
        rounds.append(await ping_round(clients, timeout))
    return rounds


async def connection_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Scenario 3, one target per process (one process cannot hold 2 x 10,000 sockets under a
    20,000 open-files limit). Commands arrive as JSON lines on stdin, answers go to stdout:
    {"op": "grow", "count": N}, {"op": "hold", "seconds": S}, {"op": "final"}, {"op": "close"}.
    """
    target = spec["targets"][0]
    held: list[Idle] = []
    base = rss_kib(target["pid"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        op, answer = command["op"], {}
        if op == "grow":
            before = len(held)
            answer = await grow(target, held, command["count"], spec["parallel"])
            answer |= {"connections": len(held), "opened": len(held) - before}
            answer["kib_per_connection"] = round((answer["rss_kib"] - base) / max(1, len(held)), 2)
        elif op == "hold":
            answer = {
                "ping_rounds": await hold(
                    held, command["seconds"], spec["ping_every_s"], spec["ping_timeout_s"]
                )
            }
        elif op == "final":
            answered = await ping_round(held, spec["ping_timeout_s"])
            still_open = sum(not c.closed.done() for c in held)
            answer = {
                "base_rss_kib": base,
                "held": len(held),
                "open_at_end": still_open,
                "answered_final_ping": answered,
                "protocol_pings_answered": sum(c.pings_in for c in held),
                "all_alive": answered == len(held) == still_open and len(held) > 0,
            }
        print(json.dumps(answer), flush=True)
        if op == "close":
            break
    for client in held:
        client.close()
    await asyncio.sleep(0.1)  # let the close frames go out
    return {}


# -- entry point -------------------------------------------------------------------------------


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    scenario = spec["scenario"]
    if scenario == "roundtrip":
        return await roundtrip(spec)
    if scenario == "connections":
        return await connection_worker(spec)
    if scenario == "fanout":
        return await fanout_repeated(spec)
    if scenario == "fanout-helper":
        await run_helper(spec)
        return {}
    return {t["name"]: await slow_consumer(t, spec) for t in spec["targets"]}


def main(argv: list[str]) -> int:
    if argv[1] == "-":  # a helper: the spec comes on stdin
        spec = json.loads(sys.stdin.readline())
    else:
        with open(argv[1], encoding="utf-8") as handle:
            spec = json.load(handle)
    raise_open_files(spec.get("open_files", 1024))
    started = time.process_time()
    result = asyncio.run(run(spec))
    if spec["scenario"] not in ("connections", "fanout-helper"):  # they have answered already
        result["loadgen_cpu_s"] = round(time.process_time() - started, 3)
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
