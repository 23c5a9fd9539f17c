"""pytest fixtures: a real Botical server per test, on SQLite and (when configured) PostgreSQL.

Set BOTICAL_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to run every
database-backed test on PostgreSQL too; each test then gets its own schema.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from botical.app import Botical
from botical.config import Settings, load_settings
from botical.testing.harness import ApiClient, start_app

POSTGRES_ENV = "BOTICAL_TEST_POSTGRES_URL"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgres"] if os.environ.get(POSTGRES_ENV) else [])
        metafunc.parametrize("db_backend", backends, indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(db_backend: str, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL schema."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'botical.db'}"
        return
    import psycopg2

    base = os.environ[POSTGRES_ENV]
    schema = f"botical_test_{secrets.token_hex(6)}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture
def botical_config_file() -> str | None:
    """Override to start the test server from a TOML file."""
    return None


@pytest.fixture
def botical_overrides() -> dict[str, Any]:
    """Override to change settings for a test module."""
    return {}


@pytest.fixture
def botical_plugins() -> tuple[object, ...]:
    """Override to register extra plugin objects in the test server."""
    return ()


@pytest.fixture
def botical_settings(
    tmp_path: Any,
    database_url: str,
    botical_config_file: str | None,
    botical_overrides: dict[str, Any],
) -> Settings:
    overrides = {"data_dir": str(tmp_path / "data"), "database_url": database_url}
    overrides.update(botical_overrides)
    return load_settings(botical_config_file, environ={}, overrides=overrides)


@pytest.fixture
def botical_app(
    io_loop: Any, botical_settings: Settings, botical_plugins: tuple
) -> Iterator[Botical]:
    """A started Botical server on 127.0.0.1, stopped after the test."""
    app = io_loop.run_sync(lambda: start_app(botical_settings, botical_plugins))
    try:
        yield app
    finally:
        io_loop.run_sync(app.stop)


@dataclass
class Person:
    """A user with a token, as tests need them."""

    id: str
    name: str
    token: str
    api: ApiClient


@pytest.fixture
def make_user(botical_app: Botical):
    """`await make_user(name, admin=False, exec=False)` -> Person with a token and a client."""

    async def make(name: str, admin: bool = False, exec: bool = False) -> Person:
        user = await botical_app.users.create(name, admin, exec)
        token = botical_app.tokens.issue(user["id"]).token
        return Person(user["id"], name, token, ApiClient(botical_app.url, token))

    return make


@pytest.fixture
def api(botical_app: Botical) -> ApiClient:
    """An unauthenticated client for the test server."""
    return ApiClient(botical_app.url)


@pytest.fixture
def events(botical_app: Botical) -> Iterator[Any]:
    """An EventLog of everything published on the test server's bus."""
    from botical.testing.harness import EventLog

    log = EventLog(botical_app.bus)
    yield log
    log.close()
