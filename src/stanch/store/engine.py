"""Engines for the store: SQLite tuned for one writer and concurrent readers, or PostgreSQL.

Nothing is created at import time; :func:`create_store_engine` is called by ``Store.open``.

SQLite, set on each new connection: WAL journal mode (readers never wait for the writer, so
``stanch incidents`` works while ``stanch demo`` writes), a busy timeout (a second writer waits
instead of failing), foreign keys on, and ``BEGIN IMMEDIATE`` for transactions that write, so a
read-then-write transaction takes the write lock up front instead of failing half-way when
another process committed in between. Transactions marked with the ``READ_ONLY`` execution
option begin plainly and take no lock.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from stanch.core.errors import ValidationError

SQLITE_BUSY_TIMEOUT_MS = 5_000
READ_ONLY = "stanch_read_only"  # execution option: a transaction that never writes


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; ValidationError for a database other than SQLite or PostgreSQL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    # allow_nan=False: PostgreSQL refuses NaN in JSON, so SQLite is made to refuse it too.
    dumps = partial(json.dumps, allow_nan=False, separators=(",", ":"))
    if backend == "postgresql":
        return create_engine(parsed, json_serializer=dumps, pool_pre_ping=True)
    if backend != "sqlite":
        raise ValidationError(f"unsupported database {backend!r}: use sqlite or postgresql")
    in_memory = parsed.database in (None, "", ":memory:")
    engine = create_engine(
        parsed,
        json_serializer=dumps,
        connect_args={"check_same_thread": False},
        # An in-memory database lives in one connection: share it, or each checkout is empty.
        poolclass=StaticPool if in_memory else None,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin); the driver's own would be deferred.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
