"""Schema creation and upgrades through Alembic, driven from code (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from loopml.errors import SchemaOutdated
from loopml.store.sql.engine import WRITE

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_PG_LOCK_KEY = 0x6C6F6F706D6C  # "loopml": serialises concurrent upgrades on PostgreSQL


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after). Safe to run concurrently."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after or ""


def ensure_schema(engine: sa.Engine) -> None:
    """Create the schema in an empty database; refuse to work on an outdated one.

    Creating is safe to do implicitly (nothing can be lost); changing an existing schema is
    left to ``loopml db upgrade`` so that it happens when an operator chooses.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        upgrade(engine)
        return
    raise SchemaOutdated(
        f"the metadata database at {engine.url.render_as_string(hide_password=True)!r} has "
        f"schema revision {current!r}, this loopml needs {head!r}: run `loopml db upgrade`",
        current=current,
        required=head,
    )
