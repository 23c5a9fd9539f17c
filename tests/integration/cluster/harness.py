"""Several real `botical serve` processes sharing one database and one Redis: a cluster on
one machine, each node on its own port (as behind a load balancer)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from botical.testing.wsclient import WsClient
from tests.integration.client.helpers import (
    STOP_TIMEOUT,
    ServeProcess,
    clean_env,
    free_port,
    http,
)

RUN_LEASE = 2.0  # seconds: a killed node's run is reaped within about 1.3x this


class Node(ServeProcess):
    """One `botical serve` of the cluster (all of them share its data directory)."""

    def __init__(self, name: str, cluster: Cluster) -> None:
        env = {k: v for k, v in cluster.env().items() if k.startswith("BOTICAL_")}
        super().__init__(cluster.root / "data", free_port(), cluster.root, env)
        self.name = name

    def http(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """A REST call (as the admin by default); the JSON body, asserting a 2xx status."""
        status, parsed = http(method, self.base_url + path, token or self.token, body)
        assert 200 <= status < 300, (self.name, status, parsed)
        return parsed

    async def connect(self, token: str | None = None) -> WsClient:
        return await WsClient.connect(self.ws_url, token or self.token)


class Cluster:
    """Nodes sharing a database, a Redis (under a key prefix of their own) and a secret."""

    def __init__(self, root: Path, database_url: str, redis_url: str, **settings: str) -> None:
        self.root = root
        self.database_url = database_url
        self.redis_url = redis_url
        self.prefix = f"botical_test_{secrets.token_hex(4)}"
        self.secret = secrets.token_urlsafe(48)
        self.settings = settings
        self.nodes: list[Node] = []

    def env(self) -> dict[str, str]:
        env = clean_env()
        env.update(
            BOTICAL_DATA_DIR=str(self.root / "data"),
            BOTICAL_DATABASE_URL=self.database_url,
            BOTICAL_AUTH_SECRET=self.secret,
            BOTICAL_BUS_BACKEND="redis",
            BOTICAL_BUS_URL=self.redis_url,
            BOTICAL_BUS_PREFIX=self.prefix,
            BOTICAL_AGENT_RUN_LEASE=str(RUN_LEASE),
            BOTICAL_PLUGINS_DISABLED="example",
            **self.settings,
        )
        return env

    def start(self, count: int) -> list[Node]:
        """Start `count` more nodes, one after the other (the first creates the admin)."""
        started = []
        for _ in range(count):
            node = Node(f"node{len(self.nodes) + 1}", self)
            self.nodes.append(node.start())
            started.append(node)
        return started

    def cli(self, *args: str) -> str:
        """Run a `botical` command against the cluster's database; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "botical", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=self.root,
            timeout=STOP_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def user(self, name: str) -> str:
        """A new user (no admin rights); their access token."""
        self.cli("user", "create", name)
        return self.cli("token", "create", "--user", name)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def redis_available(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        return False
    return True


def environ_redis() -> str:
    return os.environ.get("BOTICAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
