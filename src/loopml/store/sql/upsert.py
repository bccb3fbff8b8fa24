"""INSERT ... ON CONFLICT for both backends (SQLite and PostgreSQL share the syntax)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


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
        stmt = insert.on_conflict_do_update(
            index_elements=keys, set_={c: insert.excluded[c] for c in update}
        )
    else:
        stmt = insert.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt)
