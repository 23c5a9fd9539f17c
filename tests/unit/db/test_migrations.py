"""Migration 3 turns a database of straight-line sessions (with `superseded` retries) into
message trees, and is harmless on a database that already has everything."""

from __future__ import annotations

import pytest
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as apply_operations

from botical.db import Database
from botical.db import models as m
from botical.db.migrations import MIGRATIONS, current_version, migrate
from botical.services.messages import conversation

NEW_COLUMNS = {
    "sessions": ("cached_tokens", "head_id", "forked_from", "forked_at"),
    "messages": ("cached_tokens", "queue_mode", "target_run"),
}


def _as_version_2(db: Database) -> None:
    """A database as migration 2 left it: without what migration 3 adds."""
    peewee = db.peewee
    peewee.create_tables([m.SchemaVersion])
    for number, _, step in MIGRATIONS[:2]:
        step(peewee)
        m.SchemaVersion.create(version=number)
    migrator = SchemaMigrator.from_database(peewee)
    apply_operations(*(migrator.drop_column(t, c) for t, cols in NEW_COLUMNS.items() for c in cols))
    peewee.drop_tables([m.UsageRecord, m.TodoSnapshot])


def _legacy_rows(db: Database) -> None:
    """alice asked "one", got an answer, asked "two", got one; then retried "one": the three
    messages after it were marked superseded and a new answer to "one" was added."""
    peewee = db.peewee
    peewee.execute_sql(
        "INSERT INTO users (id, name, is_admin, can_execute_code, created_at) "
        "VALUES ('usr_a', 'alice', 1 = 0, 1 = 0, 1)"
    )
    peewee.execute_sql(
        "INSERT INTO projects (id, name, description, owner_id, created_at, updated_at) "
        "VALUES ('prj_a', 'P', '', 'usr_a', 1, 1)"
    )
    peewee.execute_sql(
        "INSERT INTO sessions (id, project_id, title, agent, status, input_tokens, "
        "output_tokens, cost, created_at, updated_at) "
        "VALUES ('sess_a', 'prj_a', '', 'default', 'active', 0, 0, 0, 1, 1)"
    )
    rows = [
        ("msg_1", "user", None, "run_1", "completed", 0),
        ("msg_2", "assistant", "msg_1", "run_1", "superseded", 3),
        ("msg_3", "user", None, "run_2", "superseded", 0),
        ("msg_4", "assistant", "msg_3", "run_2", "superseded", 5),
        ("msg_5", "assistant", "msg_1", "run_3", "completed", 7),
    ]
    for ident, role, parent, run, status, tokens in rows:
        mark = "?" if db.is_sqlite else "%s"
        peewee.execute_sql(
            "INSERT INTO messages (id, session_id, role, parent_id, run_id, status, model, "
            "input_tokens, output_tokens, cost, created_at, updated_at) "
            f"VALUES ({mark}, 'sess_a', {mark}, {mark}, {mark}, {mark}, 'echo', {mark}, "
            "1, 0, 1, 1)",
            (ident, role, parent, run, status, tokens),
        )


@pytest.fixture
def legacy(database_url):
    database = Database(database_url)
    database.run_sync(_as_version_2, database)
    database.run_sync(_legacy_rows, database)
    yield database
    database.close()


def test_a_straight_line_with_retries_becomes_a_tree(legacy):
    assert legacy.run_sync(migrate, legacy.peewee) == 3

    def read():
        session = m.Session.get_by_id("sess_a")
        statuses = {r.id: r.status for r in m.Message.select()}
        parents = {r.id: r.parent_id for r in m.Message.select()}
        path, queue = conversation("sess_a", session.head_id)
        ledger = {r.id: r.input_tokens for r in m.UsageRecord.select()}
        return session.head_id, statuses, parents, path, queue, ledger

    head, statuses, parents, path, queue, ledger = legacy.run_sync(read)
    assert head == "msg_5"
    assert set(statuses.values()) == {"completed"}  # superseded ones are older versions now
    assert parents == {
        "msg_1": None,
        "msg_2": "msg_1",
        "msg_3": "msg_2",  # "two" followed the first answer
        "msg_4": "msg_3",
        "msg_5": "msg_1",
    }
    assert [p["id"] for p in path] == ["msg_1", "msg_5"]
    assert path[1]["versions"] == {"index": 2, "count": 2, "ids": ["msg_2", "msg_5"]}
    assert queue == []
    assert ledger == {"run_1": 3, "run_2": 5, "run_3": 7}


def test_migrating_an_up_to_date_database_changes_nothing(db):
    assert db.run_sync(current_version, db.peewee) == len(MIGRATIONS)
    assert db.run_sync(migrate, db.peewee) == len(MIGRATIONS)
    step = MIGRATIONS[2][2]
    db.run_sync(step, db.peewee)  # what migration 1 already made is left as it is
    columns = {c.name for c in db.run_sync(db.peewee.get_columns, "messages")}
    assert {"cached_tokens", "queue_mode", "target_run"} <= columns
