"""The database handle: bound from a URL, every query run on a small executor.

peewee is synchronous, so all database work goes through `Database.run` / `Database.atomic`,
which execute on worker threads (one for SQLite, a pool for PostgreSQL) and never on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import peewee
from playhouse import db_url

from botical.metrics import DISABLED, Metrics

log = logging.getLogger(__name__)
database = peewee.DatabaseProxy()
T = TypeVar("T")
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def now_ms() -> int:
    """Current UTC time in milliseconds, the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000


class _WriteCounter:
    """Mixin counting data-changing statements, so tests can prove writes are batched. The
    PostgreSQL pool runs statements on several threads, so the count is taken under a lock."""

    writes = 0
    _count_lock = threading.Lock()

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if sql.lstrip()[:7].upper().startswith(_WRITES):
            with self._count_lock:
                self.writes += 1
        return super().execute_sql(sql, params)  # type: ignore[misc]


class CountingSqliteDatabase(_WriteCounter, peewee.SqliteDatabase):
    pass


class CountingPostgresqlDatabase(_WriteCounter, peewee.PostgresqlDatabase):
    pass


SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
}


def connect_url(url: str) -> peewee.Database:
    """Make a peewee database from `sqlite:///path` or `postgresql://...`."""
    scheme = url.split(":", 1)[0]
    params = db_url.parse(url)
    if scheme == "sqlite":
        return CountingSqliteDatabase(params.pop("database"), pragmas=SQLITE_PRAGMAS, **params)
    if scheme in ("postgres", "postgresql"):
        return CountingPostgresqlDatabase(params.pop("database"), **params)
    raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite or postgresql)")


class Prepared:
    """A model SELECT compiled once per kind of database, then run with new parameters.

    peewee compiles a query each time it runs (about 0.3 ms for a modest select) and builds a
    model instance per row; both dominate hot reads. `build(*markers)` returns
    `model.select()` (all columns) with a marker in place of each parameter; the compiled SQL
    is kept, and `rows(*args)` runs it with the arguments where the markers were. Rows are
    named tuples with the model's attribute names (`session_id` for a foreign key), so the
    same `*_to_dict` functions read them. Values are what the driver returns, except for
    fields whose conversion is Botical's own rather than peewee's (JSON text -> objects).
    """

    def __init__(self, model: type[peewee.Model], build: Callable[..., Any], arity: int) -> None:
        self._build = build
        self._markers = tuple(f"\x00param{i}\x00" for i in range(arity))
        self._compiled: dict[type, tuple[str, list[Any]]] = {}
        fields = model._meta.sorted_fields
        self._width = len(fields)
        self._record: Any = collections.namedtuple(  # type: ignore[misc]
            f"{model.__name__}Row", [getattr(f, "object_id_name", f.name) for f in fields]
        )
        self._convert = [
            (i, f.python_value)
            for i, f in enumerate(fields)
            if type(f).python_value.__module__ != peewee.__name__
        ]

    def rows(self, *args: Any) -> list[Any]:
        """Run the query on the current database (call on the executor); return its rows."""
        if len(args) != len(self._markers):
            raise ValueError(f"expected {len(self._markers)} arguments, got {len(args)}")
        db = database.obj
        compiled = self._compiled.get(type(db))
        if compiled is None:
            query = self._build(*self._markers)
            if len(query._returning) != self._width:  # not the model's whole row
                raise ValueError("a prepared query must select every column of its model")
            compiled = self._compiled[type(db)] = query.sql()
        sql, params = compiled
        places = dict(zip(self._markers, args, strict=True))  # markers are str params
        values = [places.get(p, p) if isinstance(p, str) else p for p in params]
        rows = db.execute_sql(sql, values).fetchall()
        if self._convert:
            rows = [list(row) for row in rows]
            for row in rows:
                for i, convert in self._convert:
                    row[i] = convert(row[i])
        return [self._record._make(row) for row in rows]


class Database:
    """A bound database and the executor all of its queries run on."""

    def __init__(self, url: str, workers: int = 4, metrics: Metrics = DISABLED) -> None:
        self.url = url
        self._run_seconds, self._atomic_seconds = metrics.database_run, metrics.database_atomic
        self.peewee = connect_url(url)
        self.is_sqlite = isinstance(self.peewee, peewee.SqliteDatabase)
        self.workers = 1 if self.is_sqlite else workers
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="botical-db")
        database.initialize(self.peewee)

    @property
    def writes(self) -> int:
        """How many INSERT/UPDATE/DELETE statements this database has executed."""
        return self.peewee.writes  # type: ignore[attr-defined]

    def _call(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        self.peewee.connect(reuse_if_open=True)
        return fn(*args, **kwargs)

    def _call_atomic(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        self.peewee.connect(reuse_if_open=True)
        # SQLite: take the write lock when the transaction begins (BEGIN IMMEDIATE), so that
        # processes sharing the file (nodes, workers) wait for each other (busy_timeout)
        # instead of failing "database is locked" when a read turns into a write.
        lock = ("IMMEDIATE",) if isinstance(self.peewee, peewee.SqliteDatabase) else ()
        with self.peewee.atomic(*lock):
            return fn(*args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` on the database executor and return its result."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, args, kwargs)
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._run_seconds.observe(time.perf_counter() - started)

    async def atomic(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` inside one transaction on the executor; it commits before this returns."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call_atomic, fn, args, kwargs)
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._atomic_seconds.observe(time.perf_counter() - started)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` on the executor from synchronous code (the CLI) and wait for it."""
        return self._executor.submit(self._call_atomic, fn, args, kwargs).result()

    def close(self) -> None:
        """Close the connection held by every worker thread, then stop the executor."""
        barrier = threading.Barrier(self.workers, timeout=5)

        def close_one() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()  # one close per worker thread: each holds its own connection
            if not self.peewee.is_closed():
                self.peewee.close()

        futures = [self._executor.submit(close_one) for _ in range(self.workers)]
        for fut in futures:
            fut.result()
        self._executor.shutdown(wait=True)

    def ping(self) -> None:
        """Run a trivial query; raises if the database cannot answer."""
        self.peewee.execute_sql("SELECT 1").fetchone()
