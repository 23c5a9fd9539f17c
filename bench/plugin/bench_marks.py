"""Bench-only Botical plugin (loaded through `[plugins] dirs` by bench/run.py, never shipped).

It stamps each streaming delta with time.monotonic_ns() when the bus delivers it, just before
the broadcaster serializes and queues it (exact-name bus subscribers run before `*` ones), so
the load generator can measure publish -> arrival latency on the shared monotonic clock. The
seq it records is the one the broadcaster is about to give the event on its session channel.
`bench.marks {channel}` returns and forgets the marks of a channel: {marks: [[seq, t_ns]]}, and
the garbage collections since the last call: {gc: [[generation, start_ns, duration_ns]]}.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

from marshmallow import Schema, fields

from botical import MethodContext, hookimpl, method

_marks: dict[str, list[tuple[int, int]]] = {}
_gc: list[tuple[int, int, int]] = []  # (generation, start ns, duration ns) of each collection
_gc_start = [0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_start[0] = time.monotonic_ns()
    elif len(_gc) < 100_000:
        _gc.append((info["generation"], _gc_start[0], time.monotonic_ns() - _gc_start[0]))


class MarksParams(Schema):
    channel = fields.String(required=True)


@method("bench.marks", MarksParams, role=None, scope=None)
async def marks(ctx: MethodContext, p: dict[str, Any]) -> dict[str, Any]:
    """Return and forget the publish marks of a channel, and the garbage collections since
    the last call (benchmarks only)."""
    collections = list(_gc)
    _gc.clear()
    return {"marks": _marks.pop(p["channel"], []), "gc": collections}


@hookimpl
def botical_register_methods(register) -> None:
    register(sys.modules[__name__])


@hookimpl
def botical_startup(app) -> None:
    broadcaster = app.broadcaster

    def record(event) -> None:
        if event.session_id and "delta" in event.data:
            channel = f"session:{event.session_id}"
            _marks.setdefault(channel, []).append(
                (broadcaster.seq(channel) + 1, time.monotonic_ns())  # the in-process one
            )

    app.bus.subscribe("part.updated", record)
    gc.callbacks.append(_on_gc)
    if os.environ.get("BENCH_GC_FREEZE"):  # experiment (bench/NOTES.md): what gc.freeze() buys
        gc.freeze()
    if os.environ.get("BENCH_GC_THRESHOLD"):  # experiment: "700,10,10" sets gc.set_threshold
        gc.set_threshold(*(int(n) for n in os.environ["BENCH_GC_THRESHOLD"].split(",")))
