"""The Alembic migrations produce exactly the tables the store code uses, on each backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from loopml.errors import SchemaOutdated
from loopml.store import open_store
from loopml.store.sql import SqlStore, schema
from loopml.store.sql.engine import create_engine
from loopml.store.sql.migrate import current_revision, ensure_schema, head_revision, upgrade


def test_migrated_schema_matches_the_table_definitions(store: SqlStore) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, schema.metadata)
    assert diff == []


def test_a_fresh_database_is_created_at_head(tmp_path) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'new' / 'loopml.db'}"
    store = open_store(uri)
    store.close()
    assert current_revision(create_engine(uri)) == head_revision()


def test_upgrade_at_head_changes_nothing(store_uri: str) -> None:
    engine = create_engine(store_uri)
    ensure_schema(engine)
    assert upgrade(engine) == (head_revision(), head_revision())


def test_an_outdated_schema_asks_for_db_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(uri)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutdated, match="loopml db upgrade") as err:
        open_store(uri)
    assert err.value.details == {"current": "0000", "required": head_revision()}


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{tmp_path / 'wal.db'}", busy_timeout_s=12)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 12_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_the_head_constant_names_the_newest_migration() -> None:
    from loopml.store.sql.migrate import HEAD_REVISION

    assert head_revision() == HEAD_REVISION
