"""Schema migrations: numbered steps, applied in order, recorded in `schema_version`.

Migration 1 creates the tables as the models define them (on an empty database every table,
so each later step must be harmless when what it adds is already there). A later change adds
a new numbered step (using `playhouse.migrate`), never edits an applied one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee as pw

from botical.db import models

log = logging.getLogger(__name__)

Migration = Callable[[pw.Database], None]


def _initial_schema(db: pw.Database) -> None:
    db.create_tables(models.ALL_MODELS, safe=True)


def _runs_table(db: pw.Database) -> None:
    db.create_tables([models.Run], safe=True)


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema", _initial_schema),
    (2, "runs: one run per session across nodes, with leases", _runs_table),
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
