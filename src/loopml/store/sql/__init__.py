"""The SQL metadata store: SQLite (embedded default) and PostgreSQL through SQLAlchemy."""

from loopml.store.sql.store import SqlStore

__all__ = ["SqlStore"]
