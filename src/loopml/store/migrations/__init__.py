"""Alembic migrations of the SQL metadata store (run with ``loopml db upgrade``)."""
