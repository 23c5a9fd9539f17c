"""Profile the Botical server under one benchmark load with py-spy (sampling, no code change).

    .venv/bin/pip install py-spy        (not a dependency of Botical or of `make bench`)
    .venv/bin/python bench/profile_botical.py get        sessions.get, 32 in flight, one socket
    .venv/bin/python bench/profile_botical.py get --depth 1     the same, one at a time
    .venv/bin/python bench/profile_botical.py ping       pings, 32 in flight
    .venv/bin/python bench/profile_botical.py fanout -n 100    one answer to 100 subscribers

Prepares the servers exactly as bench/run.py does, records `botical serve` while the load
generator runs, and prints the functions with the most samples, inclusive and self. The
collapsed stacks are kept in --out (open them with speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import Bench, parse_args

PY_SPY = Path(sys.executable).parent / "py-spy"


def summarize(collapsed: Path, top: int) -> str:
    """Top functions by inclusive and by self samples, from py-spy's raw (collapsed) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    out = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        out.append(f"\n-- top {top} {title} --")
        for frame, n in counter.most_common(top):
            out.append(f"{100 * n / total:5.1f}%  {frame}")
    return "\n".join(out)


async def profile(
    load: str, subscribers: int, seconds: float, out: Path, top: int, depth: int
) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="botical-profile-"))
    bench = Bench(parse_args([]), tmp)
    try:
        await bench.prepare()
        spec: dict[str, Any]
        if load == "fanout":
            spec = {"scenario": "fanout", "subscribers": subscribers, "deltas": 2000}
        else:
            spec = {"scenario": "roundtrip", "kind": load, "depth": depth, "blocks": 1,
                    "block_s": seconds, "warmup_s": 0.2}  # fmt: skip
        targets = [t for t in bench.targets() if t["kind"] == "botical"]
        spy = await asyncio.create_subprocess_exec(
            str(PY_SPY), "record", "-p", str(bench.botical.pid), "-d", str(int(seconds)),
            "-r", "250", "-f", "raw", "-o", str(out),
        )  # fmt: skip
        await asyncio.sleep(0.5)  # let py-spy attach
        await bench.loadgen({**spec, "targets": targets})
        await asyncio.wait_for(spy.wait(), seconds + 30)
        return summarize(out, top)
    finally:
        await bench.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("load", choices=["ping", "get", "fanout"])
    parser.add_argument("-n", "--subscribers", type=int, default=100)
    parser.add_argument("-s", "--seconds", type=float, default=8.0)
    parser.add_argument("--out", default="/tmp/botical-profile.txt")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--depth", type=int, default=32, help="requests in flight (ping, get)")
    args = parser.parse_args()
    print(
        asyncio.run(
            profile(args.load, args.subscribers, args.seconds, Path(args.out), args.top, args.depth)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
