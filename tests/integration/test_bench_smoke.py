"""The benchmark harness (bench/) must keep working: correctness only, never speed.

`make bench` is not part of `make test`; these checks run the baseline server in process and a
quick scenario-1 run of bench/run.py end to end, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.netutil

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bench_modules(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import baseline_server
    import wire

    return baseline_server, wire


@pytest.mark.gen_test(timeout=10)
async def test_baseline_answers_ping_request_and_fans_out(bench_modules):
    baseline_server, wire = bench_modules
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(baseline_server.make_app({"x.get": {"answer": 42}}))
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    try:
        client = await wire.connect(wire.RpcClient, "127.0.0.1", port, "/ws", timeout=5)
        ready = json.loads(client.first.result())
        assert ready["event"] == "connection.ready"
        assert await client.call({"type": "ping"}, timeout=5) == {"type": "pong", "id": "c1"}
        assert await client.request("x.get", {}, timeout=5) == {"answer": 42}

        listener = await wire.connect(wire.RpcClient, "127.0.0.1", port, "/ws", timeout=5)
        ack = await listener.subscribe("session:s", timeout=5)
        assert ack["subscribed"] == [{"channel": "session:s", "seq": 0, "recovered": False}]
        params = {"channel": "session:s", "part": {"id": "p"}, "deltas": ["a ", "b ", "c"]}
        assert await client.request("bench.publish", params, timeout=5) == {"published": 3}
        frames = [await listener.next_event("part.updated", timeout=5) for _ in range(3)]
        assert [f["data"]["delta"] for f in frames] == ["a ", "b ", "c"]
        assert [f["seq"] for f in frames] == [1, 2, 3]
        marks = await client.request("bench.marks", {"channel": "session:s"}, timeout=5)
        assert [seq for seq, _ in marks["marks"]] == [1, 2, 3]
        client.close()
        listener.close()
    finally:
        server.stop()
        await asyncio.sleep(0)


def test_quick_run_of_scenario_1_writes_results(tmp_path: Path):
    out, report = tmp_path / "results.json", tmp_path / "RESULTS.md"
    command = [sys.executable, str(BENCH / "run.py"), "--quick", "--scenario", "1",
               "--block", "0.05", "--out", str(out), "--md", str(report)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    runs = results["scenarios"]["1"]
    assert set(runs) == {
        "ping_serial",
        "ping_pipelined",
        "get_serial",
        "get_pipelined",
        "get_uncached_serial",
        "get_uncached_pipelined",
    }
    for run in runs.values():
        for server in ("baseline", "botical"):
            assert run[server]["requests"] > 0
            assert run[server]["errors"] == 0
    assert [c["target"].split(":")[0] for c in results["checks"]] == ["1"] * 4
    assert "## Targets (issue 6)" in report.read_text()
    assert "sessions.get (caches off) serial" in report.read_text()


def test_quick_run_with_metrics_measures_the_metered_server_side_by_side(tmp_path: Path):
    out, report = tmp_path / "results.json", tmp_path / "RESULTS.md"
    command = [sys.executable, str(BENCH / "run.py"), "--quick", "--scenario", "1,2",
               "--block", "0.05", "--metrics", "--out", str(out), "--md", str(report)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    for key in ("ping_serial", "get_pipelined"):
        assert results["scenarios"]["1"][key]["botical_metrics"]["requests"] > 0
    assert "botical_metrics" not in results["scenarios"]["1"]["get_uncached_serial"]
    for run in results["scenarios"]["2"].values():
        assert run["botical_metrics"]["complete"]
    scraped = results["metrics_scraped"]
    assert scraped["scenario 1"]["botical_method_seconds_count"] > 0
    assert scraped["scenario 2"]["botical_events_delivered_total"] >= 200 * 11  # 1 + 10 subs
    metered = [c["target"] for c in results["checks"] if c["target"].endswith("metrics on")]
    assert len(metered) == 6  # scenario 1's four targets and scenario 2's two
    assert "## Metrics on against off" in report.read_text()
