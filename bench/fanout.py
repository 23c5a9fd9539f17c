"""Scenario 2 (fan-out), run inside the load generator, and the streaming pieces scenario 4
(bench/slow.py) shares with it.

Timestamps, on the monotonic clock every process on the machine shares:
- publish: the server stamps each delta when it is handed to fan-out (Botical: the bench
  plugin's bus subscriber, just before the broadcaster serializes it; baseline: just before it
  serializes it), returned afterwards by `bench.marks`;
- arrival: the load generator stamps each read from a socket (one stamp per `recv`, taken before
  the frames in it are parsed).
Latency of a delta = its arrival at the last subscriber to get it - its publish time. A merged
frame (`mergedFrom`) delivers every seq it stands for at its arrival time. Delivered deltas per
second = deltas covered at all subscribers / (last arrival - first publish).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import time
from typing import Any

from helpers import Helpers
from measure import Meter, percentile, rss_kib
from wire import RpcClient, WsClient, connect

MERGED_FROM = b',"mergedFrom":'
IDLE_EVENT = b'"event":"agent.status_changed"'
IDLE_STATUS = b'"status":"idle"'
_WORDS = re.compile(r"\s*\S+\s*|\s+")  # how the echo provider splits text into deltas
FLOOD_WORD = "x" * 150_000
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def fake_id(prefix: str) -> str:
    return prefix + "_" + "".join(_B32[b % 32] for b in os.urandom(26))


def answer_text(deltas: int) -> tuple[str, list[str]]:
    """A message of `deltas` words, and the deltas echo streams for it."""
    text = " ".join(f"w{i:04d}" for i in range(deltas))
    return text, _WORDS.findall(text)


class Run:
    """What the subscribers of one stream saw."""

    def __init__(self, subscribers: int, deltas: int) -> None:
        self.subscribers, self.deltas = subscribers, deltas
        self.last_arrival: dict[int, int] = {}
        self.complete = self.idle = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.all_idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Subscriber(WsClient):
    """Counts delta coverage and gaps by seq without decoding JSON (only the ack is parsed)."""

    def __init__(self) -> None:
        super().__init__()
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.run: Run | None = None
        self.last_seq = 0
        self.covered = self.gaps = self.merged = 0

    def start(self, run: Run) -> None:
        self.run, self.covered = run, 0

    def on_text(self, payload: bytes, t_ns: int) -> None:
        if not self.acked.done():
            frame = json.loads(payload)
            if frame.get("type") != "response":
                return
            if "error" in frame or frame["result"]["rejected"]:
                self.acked.set_exception(RuntimeError(f"subscribe refused: {frame}"))
            else:
                self.last_seq = frame["result"]["subscribed"][0]["seq"]
                self.acked.set_result(None)
            return
        at = payload.rfind(b'"seq":')
        tail = payload[at + 6 : -1]
        cut = tail.find(MERGED_FROM)
        seq = int(tail if cut < 0 else tail[:cut])
        first = seq if cut < 0 else int(tail[cut + len(MERGED_FROM) :])
        if first != self.last_seq + 1:
            self.gaps += 1
        self.last_seq = seq
        run = self.run
        if run is None:
            return
        if b'"delta":' in payload:
            self._delta(run, first, seq, t_ns)
        elif IDLE_EVENT in payload and IDLE_STATUS in payload:
            run.idle += 1
            if run.idle == run.subscribers and not run.all_idle.done():
                run.all_idle.set_result(None)

    def _delta(self, run: Run, first: int, seq: int, t_ns: int) -> None:
        if first != seq:
            self.merged += 1
        last = run.last_arrival
        for s in range(first, seq + 1):
            if last.get(s, 0) < t_ns:
                last[s] = t_ns
        self.covered += seq - first + 1
        if self.covered == run.deltas:
            run.complete += 1
            if run.complete == run.subscribers and not run.done.done():
                run.done.set_result(None)


async def open_many(factory: Any, target: dict[str, Any], count: int, parallel: int) -> list[Any]:
    """Open `count` sockets, at most `parallel` handshakes at a time (listen backlog is 128)."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> Any:
        async with gate:
            return await connect(factory, target["host"], target["port"], target["path"])

    return list(await asyncio.gather(*(one() for _ in range(count))))


class Stream:
    """One target's channel and sender: start a stream of deltas, fetch its publish marks."""

    def __init__(self, target: dict[str, Any], sender: RpcClient, deltas: int) -> None:
        self.target, self.sender = target, sender
        self.text, self.deltas = answer_text(deltas)
        self.channel = ""
        self.session_id = ""

    async def open_channel(self) -> str:
        if self.target["kind"] == "botical":
            session = await self.sender.request(
                "sessions.create", {"projectId": self.target["project"], "title": "bench"}
            )
            self.session_id = session["id"]
            self.channel = f"session:{self.session_id}"
        else:
            self.channel = f"session:{fake_id('sess')}"
        return self.channel

    async def start(self) -> None:
        if self.target["kind"] == "botical":
            params = {"sessionId": self.session_id, "content": self.text}
            await self.sender.request("messages.send", params)
            return
        now = int(time.time() * 1000)
        part = {
            "id": fake_id("part"),
            "messageId": fake_id("msg"),
            "sessionId": self.channel.split(":", 1)[1],
            "type": "text",
            "position": 1,
            "status": "streaming",
            "createdAt": now,
            "updatedAt": now,
        }
        params = {"channel": self.channel, "part": part, "deltas": self.deltas}
        await self.sender.request("bench.publish", params)

    async def flood(self, total: int, timeout: float) -> int:
        """Send about `total` bytes of large events on the channel; return the bytes sent.

        Botical: messages of one long word, so each is 3 frames of FLOOD_WORD characters (the
        user's text part, the one delta, the final text part); the sender subscribes to see
        each run end. Baseline: one-delta `bench.publish` calls of the same word."""
        sent = 0
        if self.target["kind"] == "botical":
            await self.sender.subscribe(self.channel)
            while sent < total:
                params = {"sessionId": self.session_id, "content": FLOOD_WORD}
                answer = await self.sender.request("messages.send", params)
                await self.sender.next_event(
                    "agent.status_changed", timeout, status="idle", runId=answer["runId"]
                )
                self.sender.events.clear()
                sent += 3 * len(FLOOD_WORD)
            return sent
        part = {"id": fake_id("part"), "messageId": fake_id("msg"), "type": "text"}
        while sent < total:
            params = {"channel": self.channel, "part": part, "deltas": [FLOOD_WORD]}
            await self.sender.request("bench.publish", params)
            sent += len(FLOOD_WORD)
        await asyncio.sleep(0.5)  # the last publish runs as a task after its answer
        return sent

    async def marks(self) -> tuple[list[tuple[int, int]], list[list[int]]]:
        """Publish marks [(seq, t_ns)], and Botical's garbage collections since the last call
        [[generation, start_ns, duration_ns]] (the baseline reports none)."""
        result = await self.sender.request("bench.marks", {"channel": self.channel})
        return [(int(seq), int(t)) for seq, t in result["marks"]], result.get("gc", [])


async def stream_once(
    stream: Stream, subs: list[Subscriber], timeout: float, meter: Meter, helpers: Any = None
) -> dict[str, Any]:
    """Stream one answer to `subs` (the ones that keep up) and to the helper processes'
    subscribers, if any; return its figures."""
    run = Run(len(subs), len(stream.deltas))
    for sub in subs:
        sub.start(run)
    with meter:
        await stream.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(run.done), timeout)
    theirs = await helpers.collect(timeout + 10) if helpers else []
    if stream.target["kind"] == "botical":  # let the run finish before the next one starts
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(run.all_idle), timeout)
    marks, collections = await stream.marks()
    return summarize(run, marks, subs, theirs) | _full_collections(marks, run, collections)


def _full_collections(
    marks: list[tuple[int, int]], run: Run, collections: list[list[int]]
) -> dict[str, Any]:
    """Full (generation 2) garbage collections in the server during the stream."""
    if not marks or not run.last_arrival:
        return {}
    start, end = marks[0][1], max(run.last_arrival.values())
    full = [pause for gen, at, pause in collections if gen == 2 and start <= at <= end]
    return {"gc_full": len(full), "gc_full_max_ms": round(max(full, default=0) / 1e6, 1)}


def summarize(
    run: Run, marks: list[tuple[int, int]], subs: list[Subscriber], theirs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Figures of one stream; `theirs` are the helper processes' reports, merged in."""
    for report in theirs:
        for seq, t in report["last_arrival"]:
            if run.last_arrival.get(seq, 0) < t:
                run.last_arrival[seq] = t
    lat = [run.last_arrival[seq] - t for seq, t in marks if seq in run.last_arrival]
    delivered = sum(sub.covered for sub in subs) + sum(r["delivered"] for r in theirs)
    helpers_complete = all(r["complete"] for r in theirs)
    last = max(run.last_arrival.values(), default=0)
    window = (last - marks[0][1]) / 1e9 if marks and last else 0.0
    publish_span = (marks[-1][1] - marks[0][1]) / 1e9 if marks else 0.0
    return {
        "subscribers": run.subscribers + sum(r["subscribers"] for r in theirs),
        "generators": 1 + len(theirs),
        "deltas": run.deltas,
        "published": len(marks),
        "delivered": delivered,
        "complete": run.complete == run.subscribers
        and helpers_complete
        and len(lat) == len(marks) == run.deltas,
        "incomplete_subscribers": run.subscribers - run.complete,
        "window_s": round(window, 4),
        "publish_span_s": round(publish_span, 4),
        "deltas_per_s": round(delivered / window) if window else 0,
        "p50_ms": round(percentile(lat, 50) / 1e6, 3),
        "p99_ms": round(percentile(lat, 99) / 1e6, 3),
        "max_ms": round(max(lat, default=0) / 1e6, 3),
        "merged_frames": sum(sub.merged for sub in subs) + sum(r["merged"] for r in theirs),
        "gaps": sum(sub.gaps for sub in subs) + sum(r["gaps"] for r in theirs),
        "helper_cpu_s": round(sum(r["cpu_s"] for r in theirs), 3),
    }


class RssSampler:
    """Samples a server's RSS every `interval` seconds in the background; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.start_kib = self.peak_kib = rss_kib(pid)
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            await asyncio.sleep(self.interval)

    def stop(self) -> dict[str, int]:
        self._task.cancel()
        end = rss_kib(self.pid)
        self.peak_kib = max(self.peak_kib, end)
        return {"start_kib": self.start_kib, "peak_kib": self.peak_kib, "end_kib": end}


async def subscribe_all(subs: list[Subscriber], channel: str, timeout: float) -> None:
    for sub in subs:
        sub.send_text(json.dumps({"type": "subscribe", "id": "s", "channels": [channel]}))
    await asyncio.wait_for(asyncio.gather(*(sub.acked for sub in subs)), timeout)


async def fanout(target: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Scenario 2 for one target and one subscriber count. With `generators` > 1, helper
    processes hold an equal share of the subscribers (to check this process is no bottleneck)."""
    sender = await connect(RpcClient, target["host"], target["port"], target["path"])
    stream = Stream(target, sender, spec["deltas"])
    channel = await stream.open_channel()
    helpers = None
    own = spec["subscribers"]
    if spec.get("generators", 1) > 1 and spec["subscribers"] >= spec["generators"]:
        helpers = await Helpers.start(target, channel, spec)
        own -= helpers.subscribers
    subs = await open_many(Subscriber, target, own, spec["parallel"])
    try:
        await subscribe_all(subs, channel, spec["timeout"])
        meter, sampler = Meter(target["pid"]), RssSampler(target["pid"])
        result = await stream_once(stream, subs, spec["timeout"], meter, helpers)
        result["rss"] = sampler.stop()
        result["cpu"] = meter.summary()
        return result
    finally:
        for client in [*subs, sender]:
            client.close()
        if helpers:
            await helpers.stop()


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated runs of one target: each figure is the median over the runs."""
    if len(runs) == 1:
        return runs[0]
    out = dict(sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2])  # cpu, rss: that run's
    for key in ("deltas_per_s", "p50_ms", "p99_ms", "max_ms", "window_s", "publish_span_s"):
        out[key] = statistics.median(r[key] for r in runs)
    out["complete"] = all(r["complete"] for r in runs)
    out["runs"] = [{k: r[k] for k in ("deltas_per_s", "p50_ms", "p99_ms")} for r in runs]
    return out


async def fanout_repeated(spec: dict[str, Any]) -> dict[str, Any]:
    """Scenario 2 for one subscriber count, the targets alternating `repeats` times."""
    runs: dict[str, list[dict[str, Any]]] = {t["name"]: [] for t in spec["targets"]}
    for _ in range(spec.get("repeats", 1)):
        for target in spec["targets"]:
            runs[target["name"]].append(await fanout(target, spec))
    return {name: combine(found) for name, found in runs.items()}
