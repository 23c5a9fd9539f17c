"""Scenario 4, the slow consumer, run inside the load generator (timestamps as in fanout.py).

Phase 1: `others` subscribers keep up while one more has stopped reading (SO_RCVBUF 4 KiB, then
`pause_reading`), over `streams` answers. Phase 2, the bound: the others leave and `flood_bytes`
of large events go to the stalled one, more than the kernel's socket buffer and the server's
queue bound together hold, after the same flood to a channel nobody stalls (the control).
Then the stalled one reads again and we see what the server left it.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from fanout import RssSampler, Run, Stream, Subscriber, open_many, stream_once, subscribe_all
from measure import Meter, tcp_queues
from wire import RpcClient, WsClient, connect


async def slow_consumer(target: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Scenario 4 for one target (see the module docstring)."""
    sender = await connect(RpcClient, target["host"], target["port"], target["path"])
    stream = Stream(target, sender, spec["deltas"])
    channel = await stream.open_channel()
    others = await open_many(Subscriber, target, spec["others"], spec["parallel"])
    slow = await connect(
        Subscriber, target["host"], target["port"], target["path"], rcvbuf=spec["rcvbuf"]
    )
    try:
        await subscribe_all([*others, slow], channel, spec["timeout"])
        slow.transport.pause_reading()
        slow.start(Run(1, 0))  # counts what it finally gets; never "complete"
        sampler, meter = RssSampler(target["pid"]), Meter(target["pid"])
        runs = [await stream_once(stream, others, spec["timeout"], meter)]
        for _ in range(spec["streams"] - 1):
            runs.append(await stream_once(stream, others, spec["timeout"], meter))
        rss = sampler.stop()
        kernel = _kernel_queues(target, slow)
        for other in others:
            other.close()
        control = Stream(target, sender, spec["deltas"])  # the same flood, nobody stalled
        await control.open_channel()
        control_sampler = RssSampler(target["pid"])
        await control.flood(spec["flood_bytes"], spec["timeout"])
        control_rss = control_sampler.stop()
        flood_sampler = RssSampler(target["pid"])
        flooded = await stream.flood(spec["flood_bytes"], spec["timeout"])
        flood_rss = flood_sampler.stop()
        flood_kernel = _kernel_queues(target, slow)
        slow.transport.resume_reading()
        try:
            code = await asyncio.wait_for(asyncio.shield(slow.closed), spec["slow_wait"])
        except TimeoutError:
            code = None
        return {
            "others": spec["others"],
            "streams": runs,
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "rss": rss,
            "rss_growth_kib": rss["peak_kib"] - rss["start_kib"],
            "cpu": meter.summary(),
            "flood": {
                "bytes_sent_to_stalled": flooded,
                "rss": flood_rss,
                "rss_growth_kib": flood_rss["peak_kib"] - flood_rss["start_kib"],
                "control_rss": control_rss,
                "control_rss_growth_kib": control_rss["peak_kib"] - control_rss["start_kib"],
                "kernel_bytes": flood_kernel,
            },
            "slow": {
                "close_code": code,
                "frames": slow.frames_in,
                "deltas_covered": slow.covered,
                "merged_frames": slow.merged,
                "gaps": slow.gaps,
                "kernel_bytes_after_streams": kernel,
            },
        }
    finally:
        for client in [*others, slow, sender]:
            client.close()


def _kernel_queues(target: dict[str, Any], client: WsClient) -> dict[str, Any]:
    assert client.transport is not None
    port = client.transport.get_extra_info("sockname")[1]
    return {
        "server_socket": tcp_queues(target["port"], port),
        "client_socket": tcp_queues(port, target["port"]),
    }
