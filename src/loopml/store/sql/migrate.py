"""Schema creation and upgrades through Alembic, driven from code (no alembic.ini needed).

Opening a store only reads ``alembic_version`` with one query and compares it with
:data:`HEAD_REVISION`; Alembic itself (about 0.15 s to import) loads only when the schema has
to be created or upgraded. A test keeps :data:`HEAD_REVISION` equal to the newest migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from loopml.errors import SchemaOutdated
from loopml.store.sql.engine import WRITE

if TYPE_CHECKING:
    from alembic.config import Config

HEAD_REVISION = "0007"
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_PG_LOCK_KEY = 0x6C6F6F706D6C  # "loopml": serialises concurrent upgrades on PostgreSQL


def _config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration, read from the migration scripts themselves."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def _read_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return _read_revision(conn)


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after). Safe to run concurrently."""
    from alembic import command

    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        before = _read_revision(conn)
        command.upgrade(_config(conn), revision)
        after = _read_revision(conn)
    return before, after or ""


def ensure_schema(engine: sa.Engine) -> None:
    """Create the schema in an empty database; refuse to work on an outdated one.

    Creating is safe to do implicitly (nothing can be lost); changing an existing schema is
    left to ``loopml db upgrade`` so that it happens when an operator chooses.
    """
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    if current is None:
        upgrade(engine)
        return
    raise SchemaOutdated(
        f"the metadata database at {engine.url.render_as_string(hide_password=True)!r} has "
        f"schema revision {current!r}, this loopml needs {HEAD_REVISION!r}: run "
        "`loopml db upgrade`",
        current=current,
        required=HEAD_REVISION,
    )
