"""Run the Botical benchmarks side by side with the bare-Tornado baseline (issue 6).

    .venv/bin/python bench/run.py                 everything, a few minutes (`make bench`)
    .venv/bin/python bench/run.py --quick         a smoke run of every scenario (seconds)
    .venv/bin/python bench/run.py --scenario 1,2  only some scenarios
    .venv/bin/python bench/run.py --scenario 1,2 --metrics --out bench/results-metrics.json --md ''
                                                  1 and 2 also against a Botical with metrics on

Starts `botical serve` (temporary data directory, bench/botical-bench.toml, the bench plugin
in bench/plugin/) and bench/baseline_server.py, prepares a user, token, project and a session
of 20 messages through the CLI and the WebSocket API, runs each scenario in a separate
load-generator process (bench/loadgen.py) against both servers, then writes bench/results.json
and regenerates bench/RESULTS.md (bench/report.py). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import report
import servers
import tornado
from measure import raise_open_files
from servers import BaselineServer, BoticalServer
from wire import RpcClient, connect

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
LOADGEN_TIMEOUT = 900.0
# Scenario 4 runs before 2 so its RSS is read before 1,000 subscribers have grown the heap;
# 3 holds a minute, 5 stops the servers.
ORDER = [1, 4, 2, 3, 5]

FULL = {
    "roundtrip": {"blocks": 6, "block_s": 0.5, "warmup_s": 0.3, "depth": 32},
    "fanout": {"subscribers": [1, 100, 1000], "deltas": 2000, "timeout": 240.0, "repeat": 3},
    "slow": {
        "others": 100,
        "deltas": 2000,
        "streams": 3,
        "rcvbuf": 4096,
        "slow_wait": 10.0,
        "flood_bytes": 16 * 1024 * 1024,
    },
    "connections": {"steps": [1000, 10000], "hold_s": 60.0, "ping_every_s": 20.0},
    "cold": {"runs": 3},
}
QUICK = {
    "roundtrip": {"blocks": 2, "block_s": 0.2, "warmup_s": 0.1, "depth": 32},
    "fanout": {"subscribers": [1, 10], "deltas": 200, "timeout": 30.0, "repeat": 1},
    "slow": {
        "others": 10,
        "deltas": 200,
        "streams": 2,
        "rcvbuf": 4096,
        "slow_wait": 3.0,
        "flood_bytes": 1024 * 1024,
    },
    "connections": {"steps": [20, 100], "hold_s": 2.0, "ping_every_s": 1.0},
    "cold": {"runs": 1},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run of each scenario")
    parser.add_argument("--scenario", default="1,2,3,4,5", help="comma list of 1-5")
    parser.add_argument("--out", default=str(BENCH / "results.json"), help="results JSON path")
    parser.add_argument("--md", default=str(BENCH / "RESULTS.md"), help="report path ('' = none)")
    parser.add_argument("--hold", type=float, help="scenario 3 hold time, seconds")
    parser.add_argument("--subscribers", help="scenario 2 counts, e.g. 1,100,1000")
    parser.add_argument("--connections", help="scenario 3 steps, e.g. 1000,10000")
    parser.add_argument("--deltas", type=int, help="deltas per streamed answer")
    parser.add_argument("--block", type=float, help="scenario 1 seconds per measured block")
    parser.add_argument(
        "--generators", type=int, default=1, help="scenario 2: load-generator processes (check)"
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="scenarios 1 and 2: also a Botical with [metrics] enabled, side by side",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The scenario parameters: FULL or QUICK, then the command-line overrides."""
    params = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.hold is not None:
        params["connections"]["hold_s"] = args.hold
    if args.subscribers:
        params["fanout"]["subscribers"] = [int(n) for n in args.subscribers.split(",")]
    if args.connections:
        params["connections"]["steps"] = [int(n) for n in args.connections.split(",")]
    if args.deltas:
        params["fanout"]["deltas"] = params["slow"]["deltas"] = args.deltas
    if args.block:
        params["roundtrip"]["block_s"] = args.block
    params["fanout"]["generators"] = args.generators
    return params


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as handle:
        mem_kib = int(handle.readline().split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tornado": tornado.version,
        "loadavg_at_start": os.getloadavg(),
        "open_files_limit": raise_open_files(0),
    }


class Bench:
    """Both servers, the prepared objects, and the load-generator runs."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.params = plan(args)
        self.data_dir = tmp / "data"
        self.botical = BoticalServer(self.data_dir, tmp / "botical.log")
        self.baseline = BaselineServer(tmp / "responses.json", tmp / "baseline.log")
        # The same server with metrics on, on the same data directory (--metrics): scenarios 1
        # and 2 measure it in the same blocks as the other two, so its cost is a ratio.
        self.metered = BoticalServer(
            self.data_dir,
            tmp / "botical-metrics.log",
            BOTICAL_METRICS_ENABLED="true",
            BOTICAL_METRICS_ALLOWED_ADDRESSES="127.0.0.1",
        )
        self.commands: list[str] = []
        self.token = self.project = self.session = ""

    async def prepare(self) -> None:
        """User, project and token by CLI; a session of 20 messages over the WebSocket."""
        await self.cli("user", "create", "bench")
        self.project = (await self.cli("project", "create", "bench", "--owner", "bench")).split()[
            -1
        ]
        self.token = (await self.cli("token", "create", "--user", "bench")).split()[-1]
        await self.botical.start(self.token)
        self.commands.append(self.botical.command)
        client = await connect(RpcClient, "127.0.0.1", self.botical.port, self.botical.path)
        session = await client.request("sessions.create", {"projectId": self.project})
        self.session = session["id"]
        await client.subscribe(f"session:{self.session}")
        for n in range(10):  # 10 user messages + 10 echo answers
            sent = await client.request(
                "messages.send", {"sessionId": self.session, "content": f"message {n} " * 8}
            )
            await client.next_event("agent.status_changed", status="idle", runId=sent["runId"])
        full = await client.request(
            "sessions.get", {"sessionId": self.session, "includeMessages": True}
        )
        client.close()
        if len(full["messages"]) != 20:
            raise RuntimeError(f"expected 20 messages, got {len(full['messages'])}")
        self.baseline.responses.write_text(json.dumps({"sessions.get": full}))
        await self.baseline.start()
        self.commands.append(self.baseline.command)
        if self.args.metrics:
            await self.metered.start(self.token)
            self.commands.append(self.metered.command)

    async def cli(self, *args: str) -> str:
        self.commands.append(f"botical {' '.join(args)} --data-dir $TMP/data")
        return await servers.cli(self.data_dir, *args)

    def targets(self) -> list[dict[str, Any]]:
        common = {"host": "127.0.0.1", "project": self.project, "session": self.session}
        return [
            {**common, "name": "baseline", "kind": "baseline", "port": self.baseline.port,
             "path": "/ws", "pid": self.baseline.pid},
            {**common, "name": "botical", "kind": "botical", "port": self.botical.port,
             "path": self.botical.path, "pid": self.botical.pid},
        ]  # fmt: skip

    def metered_targets(self) -> list[dict[str, Any]]:
        """The targets, and with --metrics the server with metrics on as `botical_metrics`."""
        if not self.args.metrics:
            return self.targets()
        metered = {"name": "botical_metrics", "port": self.metered.port, "pid": self.metered.pid}
        return [*self.targets(), {**self.targets()[1], **metered}]

    async def scrape(self, after: str, results: dict[str, Any]) -> None:
        """With --metrics: a few totals of the metered server, proof that it counted."""
        if self.args.metrics:
            results.setdefault("metrics_scraped", {})[after] = await servers.scrape(
                self.metered.port
            )

    async def loadgen(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Run one load-generator process on `spec` and return its JSON result."""
        spec = {"targets": self.targets(), "parallel": 64, "timeout": 120.0, **spec}
        path = self.tmp / f"spec-{spec['scenario']}.json"
        path.write_text(json.dumps(spec))
        command = [PY, str(BENCH / "loadgen.py"), str(path)]
        self.commands.append(f"{Path(PY).name} bench/loadgen.py <{spec['scenario']} spec>")
        proc = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), LOADGEN_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen {spec['scenario']} exited {proc.returncode}")
        return json.loads(out.decode().strip().splitlines()[-1])

    async def scenario_1(self) -> dict[str, Any]:
        out = {}
        p = self.params["roundtrip"]
        for kind in ("ping", "get"):
            for mode, depth in (("serial", 1), ("pipelined", p["depth"])):
                spec = {**p, "scenario": "roundtrip", "kind": kind, "depth": depth}
                spec["targets"] = self.metered_targets()
                log(f"scenario 1: {kind} {mode}")
                out[f"{kind}_{mode}"] = await self.loadgen(spec)
        # For information (no target): the same reads with Botical's read and role caches off,
        # from a second server on the same database, so every request reads it.
        uncached = BoticalServer(
            self.data_dir,
            self.tmp / "botical-uncached.log",
            BOTICAL_SESSION_CACHE_BYTES="0",
            BOTICAL_AUTH_ROLE_CACHE_TTL="0",
        )
        await uncached.start(self.token)
        self.commands.append(uncached.command)
        try:
            targets = [
                {**t, "port": uncached.port, "pid": uncached.pid} if t["kind"] == "botical" else t
                for t in self.targets()
            ]
            for mode, depth in (("serial", 1), ("pipelined", p["depth"])):
                spec = {**p, "scenario": "roundtrip", "kind": "get", "depth": depth}
                log(f"scenario 1: get {mode}, caches off")
                out[f"get_uncached_{mode}"] = await self.loadgen({**spec, "targets": targets})
        finally:
            await uncached.stop()
        return out

    async def scenario_2(self) -> dict[str, Any]:
        p = self.params["fanout"]
        out = {}
        for count in p["subscribers"]:
            log(f"scenario 2: {count} subscribers")
            repeats = p["repeat"] if count <= 100 else 1  # 1,000 takes a minute a run
            spec = {**p, "scenario": "fanout", "subscribers": count, "repeats": repeats}
            spec["targets"] = self.metered_targets()
            out[str(count)] = await self.loadgen(spec)
        return out

    async def scenario_3(self) -> dict[str, Any]:
        """One worker process per server; they grow in turn, then hold at the same time."""
        p = self.params["connections"]
        log(f"scenario 3: {p['steps']} connections, held {p['hold_s']} s (servers restarted)")
        # Fresh processes: memory that earlier scenarios freed would hide per-connection RSS.
        await self.stop()
        await self.botical.start(self.token)
        await self.baseline.start()
        workers = {}
        for target in self.targets():
            spec = {
                **p,
                "scenario": "connections",
                "targets": [target],
                "parallel": 64,
                "ping_timeout_s": 15.0,
                "open_files": max(p["steps"]) + 1024,
            }
            workers[target["name"]] = await Worker.start(self.tmp, spec)
        self.commands.append(f"{Path(PY).name} bench/loadgen.py <connections spec> (x2)")
        out: dict[str, Any] = {name: {"steps": []} for name in workers}
        try:
            for count in p["steps"]:
                for name, worker in workers.items():
                    out[name]["steps"].append(await worker.ask({"op": "grow", "count": count}))
            started = time.monotonic()
            holds = await asyncio.gather(
                *(w.ask({"op": "hold", "seconds": p["hold_s"]}) for w in workers.values())
            )
            for name, held in zip(workers, holds, strict=True):
                out[name] |= held | {"hold_s": round(time.monotonic() - started, 1)}
                out[name] |= await workers[name].ask({"op": "final"})
        finally:
            for worker in workers.values():
                await worker.close()
        return out

    async def scenario_4(self) -> dict[str, Any]:
        log("scenario 4: slow consumer")
        spec = {**self.params["slow"], "scenario": "slow"}
        out = await self.loadgen(spec)
        out["botical_4008_log_lines"] = self.botical.log_count("cannot keep up")
        return out

    async def scenario_5(self) -> dict[str, Any]:
        """Cold start: the main servers are stopped first (same data directory)."""
        await self.stop()
        runs = self.params["cold"]["runs"]
        out: dict[str, Any] = {"runs": runs}
        log("scenario 5: cold start")
        botical = [
            await servers.cold_botical(self.data_dir, self.token, self.tmp) for _ in range(runs)
        ]
        fresh = await servers.cold_botical_fresh(self.tmp)
        baseline = [await servers.cold_baseline(self.tmp) for _ in range(runs)]
        out["botical_s"], out["baseline_s"], out["botical_fresh_s"] = botical, baseline, fresh
        return out

    async def stop(self) -> None:
        await self.botical.stop()
        await self.baseline.stop()
        await self.metered.stop()


class Worker:
    """A load-generator process that takes JSON-line commands (scenario 3)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, tmp: Path, spec: dict[str, Any]) -> Worker:
        path = tmp / f"spec-connections-{spec['targets'][0]['name']}.json"
        path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            PY, str(BENCH / "loadgen.py"), str(path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), LOADGEN_TIMEOUT)
        if not line:
            raise RuntimeError(f"loadgen worker ended on {command}")
        return json.loads(line)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask({"op": "close"})
        await servers.stop_process(self.proc, signal.SIGTERM)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    wanted = [int(s) for s in args.scenario.split(",") if s.strip()]
    raise_open_files(2 * 10000 + 4096)
    tmp = Path(tempfile.mkdtemp(prefix="botical-bench-"))
    bench = Bench(args, tmp)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "argv": sys.argv[1:],
        "machine": machine(),
        "params": bench.params,
        "config": (BENCH / "botical-bench.toml").read_text(),
        "scenarios": {},
    }
    started = time.monotonic()
    try:
        await bench.prepare()
        for number in sorted(wanted, key=ORDER.index):
            results["scenarios"][str(number)] = await getattr(bench, f"scenario_{number}")()
            if number in (1, 2):
                await bench.scrape(f"scenario {number}", results)
    finally:
        await bench.stop()
        results["commands"] = bench.commands
        results["duration_s"] = round(time.monotonic() - started, 1)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    results["checks"] = report.checks(results)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    if args.md:
        Path(args.md).write_text(report.render(results, BENCH / "NOTES.md"))
    log(f"wrote {args.out}" + (f" and {args.md}" if args.md else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
