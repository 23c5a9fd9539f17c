"""`serve --workers 2` with metrics: each worker is scraped on its own port (`[metrics] port`
+ its number), and the Redis bus reports the round trips of its publication batches."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botical.testing.wsclient import WsClient
from tests.integration.client.helpers import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    URL_LINE,
    Transcript,
    free_port,
    http,
)
from tests.integration.cluster.harness import Cluster


def _scrape(port: int) -> dict[str, list]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _two_free_ports() -> int:
    """A free port whose next one is free too (worker 1 listens there)."""
    while True:
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue


def _total(samples: dict[str, list], name: str) -> float:
    return sum(sample.value for sample in samples.get(name, []))


@pytest.mark.gen_test(timeout=90)
async def test_each_worker_is_scraped_on_its_own_metrics_port(tmp_path, database_url, redis_url):
    metrics_port = _two_free_ports()
    cluster = Cluster(
        tmp_path,
        database_url,
        redis_url,
        BOTICAL_METRICS_ENABLED="true",
        BOTICAL_METRICS_ALLOWED_ADDRESSES="127.0.0.1",
        BOTICAL_METRICS_PORT=str(metrics_port),
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "botical", "serve", "--port", str(port), "--workers", "2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cluster.env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out = Transcript(proc.stdout.fileno(), "serve stdout")
        err = Transcript(proc.stderr.fileno(), "serve stderr")
        token = out.expect(URL_LINE.pattern, START_TIMEOUT).group(1)
        for _ in "ab":
            err.expect(r"metrics on http://127\.0\.0\.1:\d+/metrics", START_TIMEOUT)
        base = f"http://127.0.0.1:{port}"
        project = http("POST", f"{base}/api/projects", token, {"name": "P"})[1]
        session = http("POST", f"{base}/api/projects/{project['id']}/sessions", token, {})[1]
        ws = await WsClient.connect(f"ws://127.0.0.1:{port}/ws", token)
        await ws.subscribe(f"session:{session['id']}")
        sent = await ws.request("messages.send", sessionId=session["id"], content="one two three")
        await ws.next_event("agent.status_changed", 20, runId=sent["runId"], status="idle")
        ws.close()

        workers = [_scrape(metrics_port), _scrape(metrics_port + 1)]
        nodes = {s.labels["node"] for w in workers for s in w["botical_node_info"]}
        assert len(nodes) == 2  # two processes, each with its own registry
        sent_total = sum(_total(w, "botical_bus_publications_sent_total") for w in workers)
        assert sent_total >= 5  # message, parts, deltas, status changes went through Redis
        batches = sum(_total(w, "botical_bus_batch_seconds_count") for w in workers)
        assert 1 <= batches <= sent_total
        runs = sum(
            s.value
            for w in workers
            for s in w.get("botical_runs_total", [])
            if s.labels == {"status": "completed"}
        )
        assert runs == 1  # counted once, by the worker that ran it
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
