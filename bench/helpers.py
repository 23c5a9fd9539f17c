"""Helper load-generator processes for scenario 2's cross-check: each holds a share of the
subscribers of one channel and reports when each delta arrived, so the arrivals of two (or
more) generator processes can be merged and compared with those of one.

Helper side: `loadgen.py SPEC` with scenario "fanout-helper" prints {"ready": true} once its
subscribers are subscribed, then one report when all of them have every delta (or on timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


class Helpers:
    """The main generator's view of its helper processes."""

    def __init__(self, procs: list[asyncio.subprocess.Process], subscribers: int) -> None:
        self.procs, self.subscribers = procs, subscribers

    @classmethod
    async def start(cls, target: dict[str, Any], channel: str, spec: dict[str, Any]) -> Helpers:
        count = spec["generators"]
        share = spec["subscribers"] // count
        helper_spec = {
            **spec,
            "scenario": "fanout-helper",
            "targets": [target],
            "channel": channel,
            "subscribers": share,
        }
        procs = []
        for _ in range(count - 1):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(BENCH / "loadgen.py"), "-",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(helper_spec).encode() + b"\n")
            await proc.stdin.drain()
            procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), spec["timeout"])
            if not line or not json.loads(line).get("ready"):
                raise RuntimeError("a helper load generator did not get ready")
        return cls(procs, share * len(procs))

    async def collect(self, timeout: float) -> list[dict[str, Any]]:
        reports = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            reports.append(json.loads(line))
        return reports

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)


async def run_helper(spec: dict[str, Any]) -> None:
    """Helper side: subscribe, say ready, report the arrivals of one stream."""
    from fanout import Run, Subscriber, open_many, subscribe_all

    target = spec["targets"][0]
    subs = await open_many(Subscriber, target, spec["subscribers"], spec["parallel"])
    run = Run(len(subs), spec["deltas"])
    await subscribe_all(subs, spec["channel"], spec["timeout"])
    for sub in subs:
        sub.start(run)
    started = time.process_time()
    print(json.dumps({"ready": True}), flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.done), spec["timeout"])
    report = {
        "subscribers": len(subs),
        "delivered": sum(sub.covered for sub in subs),
        "complete": run.complete == run.subscribers,
        "merged": sum(sub.merged for sub in subs),
        "gaps": sum(sub.gaps for sub in subs),
        "cpu_s": time.process_time() - started,
        "last_arrival": sorted(run.last_arrival.items()),
    }
    print(json.dumps(report), flush=True)
    for sub in subs:
        sub.close()
