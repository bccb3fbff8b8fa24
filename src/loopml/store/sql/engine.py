"""Engines for SQLite and PostgreSQL, tuned for many writers.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so two processes
never both hold a read snapshot and then fail to upgrade it (the classic "database is locked"
that no busy timeout cures). Read-only transactions stay deferred and run concurrently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from loopml.errors import InvalidArgument

WRITE = "loopml_write"
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def create_engine(
    uri: str, *, busy_timeout_s: float = 30.0, sqlite_synchronous: str = "FULL"
) -> sa.Engine:
    """An engine for a ``sqlite:///path`` or ``postgresql+psycopg://...`` URI."""
    try:
        url = make_url(uri)
    except sa.exc.ArgumentError as exc:
        raise InvalidArgument(
            f"invalid store URI {uri!r}: expected sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:port/database"
        ) from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, busy_timeout_s, sqlite_synchronous)
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise InvalidArgument(
        f"unsupported store URI scheme {url.drivername!r} in {uri!r}: use one of "
        + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
    )


def _sqlite_engine(url: sa.URL, busy_timeout_s: float, synchronous: str) -> sa.Engine:
    synchronous = synchronous.upper()
    if synchronous not in _SYNCHRONOUS:
        raise InvalidArgument(
            f"invalid SQLite synchronous mode {synchronous!r}: use one of {', '.join(_SYNCHRONOUS)}"
        )
    if url.database in (None, "", ":memory:"):
        raise InvalidArgument(
            f"SQLite store needs a file path (sqlite:///path/to/loopml.db), got {str(url)!r}: "
            "an in-memory database would vanish between connections"
        )
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        pool_size=5,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")  # LIKE as on PostgreSQL
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
