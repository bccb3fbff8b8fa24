"""INSERT ... ON CONFLICT for both backends (SQLite and PostgreSQL share the syntax)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` / ``on_conflict_do_nothing``.

    The dialect modules load on first use: PostgreSQL's costs about 30 ms to import, which an
    embedded (SQLite) process never needs."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: list[str],
    update: list[str],
) -> None:
    """Insert ``rows``; on a key conflict overwrite the ``update`` columns (none: keep the row)."""
    insert = insert_for(conn, table).values(rows)
    if update:
        # ``excluded.<column>`` spelled out: ``insert.excluded[c]`` builds a proxy of every
        # column of the table on each call (about 3 ms, 60 ms the first time in a process).
        quote = conn.dialect.identifier_preparer.quote
        stmt = insert.on_conflict_do_update(
            index_elements=keys,
            set_={c: sa.literal_column(f"excluded.{quote(c)}") for c in update},
        )
    else:
        stmt = insert.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt)
