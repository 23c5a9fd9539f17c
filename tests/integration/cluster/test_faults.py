"""The bus's faults and `serve --workers`: Redis unreachable at start is a configuration error;
Redis lost while running makes nodes unhealthy and close their sockets, nothing committed is
lost, and when it returns clients resync; N workers share one port and stop together."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.client.helpers import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    URL_LINE,
    Transcript,
    free_port,
)
from tests.integration.cluster.harness import Cluster

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisProcess:
    """A Redis of the test's own, on a free port, keeping nothing on disk."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.log = Transcript(self.proc.stdout.fileno(), "redis")
        self.log.expect("Ready to accept connections", START_TIMEOUT)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def own_redis(tmp_path: Path):
    redis = RedisProcess(tmp_path).start()
    try:
        yield redis
    finally:
        redis.kill()


def _serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botical", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=START_TIMEOUT,
        check=False,
    )


def test_redis_unreachable_at_start_is_a_configuration_error(tmp_path, database_url, redis_url):
    cluster = Cluster(tmp_path, database_url, f"redis://127.0.0.1:{free_port()}/0")
    done = _serve(["--port", str(free_port())], cluster.env(), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "[bus] url" in done.stderr and "Traceback" not in done.stderr


def test_several_workers_need_a_shared_bus(tmp_path, database_url):
    env = Cluster(tmp_path, database_url, "redis://127.0.0.1:6379/0").env()
    env["BOTICAL_BUS_BACKEND"] = "memory"
    done = _serve(["--port", str(free_port()), "--workers", "2"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "BOTICAL_BUS_BACKEND" in done.stderr or "[bus] backend" in done.stderr


@pytest.mark.gen_test(timeout=120)
async def test_losing_redis_under_load_loses_nothing_committed(tmp_path, database_url, own_redis):
    cluster = Cluster(tmp_path, database_url, own_redis.url)
    try:
        a, b = cluster.start(2)
        project = a.http("POST", "/api/projects", {"name": "P"})
        sid = a.http("POST", f"/api/projects/{project['id']}/sessions", {})["id"]
        channel = f"session:{sid}"
        on_b = await b.connect()
        await on_b.subscribe(channel)
        slow = "/slow " + " ".join(f"w{n:02d}" for n in range(80))
        sent = a.http("POST", f"/api/sessions/{sid}/messages", {"content": slow})
        await on_b.next_event("part.updated", timeout=20)
        epoch = on_b.ready["epoch"]
        own_redis.kill()
        assert await on_b.closed(timeout=20) == 1011  # told to reconnect and resync
        for node in (a, b):
            node.stderr.expect("lost the Redis bus", 20)
            assert _ready(node) == 503
        own_redis.start()
        for node in (a, b):
            node.stderr.expect("Redis bus is back", 30)
            assert _ready(node) == 200
        back = await b.connect()
        assert back.ready["epoch"] != epoch  # Redis lost the history: no replay across
        frame = {"type": "subscribe", "channels": [channel], "since": {channel: 1}, "epoch": epoch}
        ack = (await back.call(frame, timeout=20))["result"]  # resuming from before the loss
        assert ack["subscribed"][0]["recovered"] is False
        await back.next_event("agent.status_changed", 30, runId=sent["runId"], status="idle")
        synced = await back.request("sessions.sync", sessionId=sid)
        answer = synced["messages"][-1]
        assert answer["status"] == "completed"  # the run went on: the database was there
        text = "".join(p.get("text", "") for p in answer["parts"] if p["type"] == "text")
        assert text == slow.removeprefix("/slow ")
        back.close()
    finally:
        cluster.stop()


def _ready(node) -> int:
    try:
        with urllib.request.urlopen(f"{node.base_url}/health/ready", timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_workers_share_one_port_and_stop_together(tmp_path, database_url, redis_url):
    cluster = Cluster(tmp_path, database_url, redis_url)
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
        out.expect(URL_LINE.pattern, START_TIMEOUT)
        pids = [int(err.expect(r"worker (\d+) listening", START_TIMEOUT).group(1)) for _ in "ab"]
        nodes = set()
        for _ in range(60):  # new connections each: the kernel spreads them over the workers
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
                nodes.add(json.loads(resp.read())["node"])
        assert len(nodes) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=STOP_TIMEOUT) == 0
        for pid in pids:  # the workers were waited for: gone, not orphaned
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
