from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from botical.testing.plugin import POSTGRES_ENV

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_CONNECT_TIMEOUT = 5  # seconds


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once if PostgreSQL or Redis were asked for but do not answer."""
    _check_redis()
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return
    shown = _without_password(url)
    try:
        import psycopg2
    except ImportError:
        pytest.exit(
            f"{POSTGRES_ENV} is set ({shown}) but psycopg2 is not installed: "
            "pip install -e '.[test]'",
            returncode=3,
        )
    try:
        psycopg2.connect(url, connect_timeout=POSTGRES_CONNECT_TIMEOUT).close()
    except psycopg2.Error as exc:
        reason = str(exc).strip() or type(exc).__name__
        pytest.exit(
            f"{POSTGRES_ENV} is set but PostgreSQL at {shown} cannot be reached "
            f"within {POSTGRES_CONNECT_TIMEOUT}s: {reason}\n"
            f"Start PostgreSQL, or unset {POSTGRES_ENV} to run the SQLite tests only.",
            returncode=3,
        )


def _check_redis() -> None:
    url = os.environ.get("BOTICAL_TEST_REDIS_URL")
    if not url:
        return  # the cluster tests use redis://127.0.0.1:6379/0 and fail if it is not there
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=POSTGRES_CONNECT_TIMEOUT).ping()
    except redis.RedisError as exc:
        pytest.exit(
            f"BOTICAL_TEST_REDIS_URL is set but Redis at {_without_password(url)} does not "
            f"answer: {exc}\nStart Redis (.ci/run does), or unset the variable.",
            returncode=3,
        )


@pytest.fixture
def botical_config_file() -> str:
    """The suite runs with conf/test.toml."""
    return str(ROOT / "conf" / "test.toml")
