import asyncio
import logging
import sqlite3
import time

import pytest

from botical.auth.identity import Identity
from botical.bus import Event, EventBus
from botical.db import Database
from botical.db.migrations import migrate
from botical.services.projects import ProjectService
from botical.services.users import UserService


@pytest.fixture
def bus():
    return EventBus()


def recorder(bus, pattern):
    """Subscribe to `pattern` and return the list of event names received."""
    received = []
    bus.subscribe(pattern, lambda event: received.append(event.name))
    return received


def publish_all(bus, *names):
    for name in names:
        bus.publish(Event(name, {}))


def test_exact_name_matches_only_that_name(bus):
    received = recorder(bus, "part.updated")
    publish_all(bus, "part.updated", "part.created", "part.updated.extra", "part")
    assert received == ["part.updated"]


def test_prefix_pattern_matches_names_under_that_prefix_only(bus):
    received = recorder(bus, "session.*")
    publish_all(bus, "session.created", "session.updated", "sessions.created", "session", "part.x")
    assert received == ["session.created", "session.updated"]


def test_star_matches_every_event(bus):
    received = recorder(bus, "*")
    publish_all(bus, "a", "session.created", "part.updated")
    assert received == ["a", "session.created", "part.updated"]


def test_subscribers_of_one_pattern_are_called_in_subscription_order(bus):
    calls = []
    for n in range(5):
        bus.subscribe("message.created", lambda event, n=n: calls.append(n))
    publish_all(bus, "message.created")
    assert calls == [0, 1, 2, 3, 4]


def test_a_subscriber_receives_events_in_publish_order(bus):
    received = []
    bus.subscribe("part.*", lambda event: received.append(event.data["n"]))
    for n in range(10):
        bus.publish(Event("part.updated", {"n": n}))
    assert received == list(range(10))


def test_every_matching_pattern_delivers_once(bus):
    exact = recorder(bus, "part.updated")
    prefix = recorder(bus, "part.*")
    star = recorder(bus, "*")
    publish_all(bus, "part.updated")
    assert (exact, prefix, star) == (["part.updated"], ["part.updated"], ["part.updated"])


def test_unsubscribe_stops_delivery_and_may_be_called_twice(bus):
    received = []
    unsubscribe = bus.subscribe("todo.*", lambda event: received.append(event.name))
    publish_all(bus, "todo.updated")
    unsubscribe()
    unsubscribe()
    publish_all(bus, "todo.updated")
    assert received == ["todo.updated"]


def test_unsubscribe_removes_only_that_subscriber(bus):
    kept = recorder(bus, "todo.updated")
    unsubscribe = bus.subscribe("todo.updated", lambda event: None)
    unsubscribe()
    publish_all(bus, "todo.updated")
    assert kept == ["todo.updated"]


def test_a_failing_sync_subscriber_neither_stops_others_nor_raises(bus, caplog):
    before = recorder(bus, "session.created")

    def broken(event):
        raise RuntimeError("boom")

    bus.subscribe("session.created", broken)
    after = recorder(bus, "session.*")
    with caplog.at_level(logging.ERROR, logger="botical.bus"):
        publish_all(bus, "session.created")
    assert before == after == ["session.created"]
    assert "session.created" in caplog.text
    assert "boom" in caplog.text


def test_event_timestamp_defaults_to_now_in_milliseconds():
    before = time.time_ns() // 1_000_000
    event = Event("x", {})
    assert before <= event.ts <= time.time_ns() // 1_000_000


@pytest.mark.gen_test
async def test_a_failing_async_subscriber_is_logged_and_does_not_affect_others(bus, caplog):
    received = []

    async def broken(event):
        raise RuntimeError("async boom")

    async def working(event):
        received.append(event.name)

    bus.subscribe("message.created", broken)
    bus.subscribe("message.created", working)
    with caplog.at_level(logging.ERROR, logger="botical.bus"):
        bus.publish(Event("message.created", {}))
        await bus.stop()
    assert received == ["message.created"]
    assert "async bus subscriber failed on message.created" in caplog.text
    assert "async boom" in caplog.text


@pytest.mark.gen_test
async def test_stop_waits_for_pending_async_subscribers(bus):
    gate = asyncio.Event()
    finished = []

    async def slow(event):
        await gate.wait()
        finished.append(event.name)

    bus.subscribe("agent.status_changed", slow)
    bus.publish(Event("agent.status_changed", {}))
    asyncio.get_running_loop().call_soon(gate.set)
    assert finished == []
    await bus.stop()
    assert finished == ["agent.status_changed"]


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.run_sync(migrate, database.peewee)
    yield database
    database.close()


def project_name_seen_elsewhere(database_url, project_id):
    """Read the project row through a connection of its own, outside Botical's."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        sql = "SELECT name FROM projects WHERE id = ?"
    else:
        import psycopg2

        conn = psycopg2.connect(database_url)
        sql = "SELECT name FROM projects WHERE id = %s"
    try:
        cur = conn.cursor()
        cur.execute(sql, (project_id,))
        row = cur.fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@pytest.mark.gen_test
async def test_project_created_is_published_after_the_row_is_committed(db, database_url):
    user = await UserService(db).create("alice")
    owner = Identity(user["id"], "alice", False, False, "token", "tok")
    bus = EventBus()
    seen = []
    bus.subscribe(
        "project.created",
        lambda event: seen.append(
            project_name_seen_elsewhere(database_url, event.data["project"]["id"])
        ),
    )
    await ProjectService(db, bus).create(owner, "Demo")
    assert seen == ["Demo"]
