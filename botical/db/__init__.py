"""Persistence: peewee models, migrations, and the executor that keeps the event loop free."""

from botical.db.database import Database, database, now_ms

__all__ = ["Database", "database", "now_ms"]
