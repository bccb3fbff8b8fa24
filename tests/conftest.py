"""Shared fixtures: stores on real SQLite and (when LOOPML_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import loopml
from loopml.store.sql import SqlStore
from loopml.store.sql import schema as t
from loopml.store.sql.engine import create_engine
from loopml.store.sql.migrate import upgrade
from loopml.tracking import fluent

POSTGRES_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="LOOPML_TEST_POSTGRES_URL is not set (CI sets it)"
)


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the developer's ./.loopml or reads their LOOPML_* settings."""
    for name in list(os.environ):
        if name.startswith("LOOPML_") and name != "LOOPML_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOOPML_WORKSPACE", str(tmp_path / "workspace"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("LOOPML_TEST_POSTGRES_URL is not set (CI sets it)")
    admin = sa.create_engine(
        sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    name = f"loopml_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered)
    upgrade(engine)
    engine.dispose()
    try:
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(table.name for table in t.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
            " created_at, updated_at) VALUES (0, 'Default', '', 'active', 0, 0)"
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, ready store URI on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore.from_uri(store_uri)
    yield s
    s.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    """The fluent API pointed at a fresh workspace; open runs ended and the client reset after."""
    c = loopml.set_tracking(
        f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}", artifact_uri=str(tmp_path / "a")
    )
    yield c
    loopml.end_run()
    fluent._client = None
    c.close()
