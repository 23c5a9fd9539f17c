"""A cluster of real `botical serve` nodes per test, on the suite's database (SQLite shared by
the processes, or a PostgreSQL schema of its own) and the local Redis under a key prefix of its
own, which is deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.cluster.harness import Cluster, environ_redis


@pytest.fixture
def redis_url() -> str:
    url = environ_redis()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # an error, not a skip: the cluster tests must run
        pytest.fail(f"Redis at {url} does not answer ({exc}); start it (.ci/run does)")
    return url


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[Cluster]:
    made = Cluster(tmp_path, database_url, redis_url)
    try:
        yield made
    finally:
        made.stop()
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{made.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
