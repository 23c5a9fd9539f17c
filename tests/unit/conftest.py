"""Fixtures shared by the unit tests."""

import pytest

from botical.db import Database
from botical.db.migrations import migrate


@pytest.fixture
def db(database_url):
    """A migrated database on a fresh SQLite file or PostgreSQL schema, closed after the test."""
    database = Database(database_url)
    database.run_sync(migrate, database.peewee)
    yield database
    database.close()
