"""Schema migrations: numbered steps, applied in order, recorded in `schema_version`.

Migration 1 creates the tables as the models define them (on an empty database every table,
so each later step must be harmless when what it adds is already there). A later change adds
a new numbered step, never edits an applied one.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, cast

import peewee as pw

from botical.db import models

log = logging.getLogger(__name__)

Migration = Callable[[pw.Database], None]


def _initial_schema(db: pw.Database) -> None:
    db.create_tables(models.ALL_MODELS, safe=True)


def _runs_table(db: pw.Database) -> None:
    db.create_tables([models.Run], safe=True)


def _add_missing_columns(db: pw.Database, table: str, columns: dict[str, str]) -> None:
    """ALTER TABLE ADD COLUMN for each column not there yet. Written out rather than with
    playhouse.migrate, whose NOT NULL columns make SQLite rebuild the table: dropping the old
    one would delete, through ON DELETE CASCADE, the rows that refer to it."""
    present = {column.name for column in db.get_columns(table)}
    for name, ddl in columns.items():
        if name not in present:
            db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")


def _conversation_tree(db: pw.Database) -> None:
    """Message trees, queued messages, cached tokens, forks, a usage ledger, todo history.

    Earlier, a session was one line of messages and a retry marked what followed the retried
    message `superseded`. Each user message now has a parent too (the message before it when
    it was sent: the answer it followed), superseded messages become older versions again,
    and each session's head is its newest message, the end of the line it showed."""
    tokens, ident = "BIGINT NOT NULL DEFAULT 0", "VARCHAR(40)"
    _add_missing_columns(
        db,
        "sessions",
        {"cached_tokens": tokens, "head_id": ident, "forked_from": ident, "forked_at": ident},
    )
    _add_missing_columns(
        db,
        "messages",
        {"cached_tokens": tokens, "queue_mode": "VARCHAR(16)", "target_run": ident},
    )
    db.create_tables([models.UsageRecord, models.TodoSnapshot], safe=True)
    message = models.Message
    sessions: list[Any] = list(models.Session.select(models.Session.id).tuples())
    for (session_id,) in sessions:
        rows: list[Any] = list(
            message.select(message.id, message.role, message.parent_id)
            .where(message.session == session_id)
            .order_by(message.id)
            .tuples()
        )
        for (previous, _, _), (ident, role, parent) in itertools.pairwise(rows):
            if role == "user" and parent is None:
                message.update(parent_id=previous).where(message.id == ident).execute()
        if rows:
            models.Session.update(head_id=rows[-1][0]).where(
                models.Session.id == session_id
            ).execute()
    message.update(status="completed").where(message.status == "superseded").execute()
    _ledger_from_answers()


def _ledger_from_answers() -> None:
    """One usage row per answer already stored, so project totals include the past."""
    message, session = models.Message, models.Session
    answers = (
        message.select(
            message.run_id,
            message.session,
            session.project,
            message.id,
            pw.fn.COALESCE(message.model, ""),
            message.input_tokens,
            message.output_tokens,
            message.cost,
            message.updated_at,
        )
        .join(session)
        .where(message.role == "assistant", message.run_id.is_null(False))
        .tuples()
    )
    fields = [
        models.UsageRecord.id,
        models.UsageRecord.session,
        models.UsageRecord.project_id,
        models.UsageRecord.message_id,
        models.UsageRecord.model,
        models.UsageRecord.input_tokens,
        models.UsageRecord.output_tokens,
        models.UsageRecord.cost,
        models.UsageRecord.created_at,
    ]
    recorded: list[Any] = list(models.UsageRecord.select(models.UsageRecord.id).tuples())
    known = {ident for (ident,) in recorded}
    rows = [row for row in cast(Any, answers) if row[0] not in known]
    for start in range(0, len(rows), 500):
        models.UsageRecord.insert_many(rows[start : start + 500], fields=fields).execute()


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema", _initial_schema),
    (2, "runs: one run per session across nodes, with leases", _runs_table),
    (3, "conversation trees, queued messages, usage ledger, todo history", _conversation_tree),
)


def current_version(db: pw.Database) -> int:
    """Return the highest applied migration, 0 for an empty database."""
    if not db.table_exists(models.SchemaVersion._meta.table_name):
        return 0
    return models.SchemaVersion.select(pw.fn.MAX(models.SchemaVersion.version)).scalar() or 0


def migrate(db: pw.Database) -> int:
    """Apply every pending migration, each in its own transaction; return the new version."""
    db.create_tables([models.SchemaVersion], safe=True)
    version = current_version(db)
    for number, title, step in MIGRATIONS:
        if number <= version:
            continue
        with db.atomic():
            step(db)
            models.SchemaVersion.create(version=number)
        log.info("applied migration %d (%s)", number, title)
        version = number
    return version
