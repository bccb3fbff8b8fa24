"""``loopml db``: creating and inspecting the schema of a SQL store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from loopml.store.sql.migrate import head_revision

Invoke = Callable[..., Result]


def test_upgrade_a_fresh_database_then_current(
    workspace: Path, tmp_path: Path, cli: Invoke
) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh' / 'meta.db'}"
    head = head_revision()
    upgraded = cli("--store-uri", uri, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"(empty) → {head}" in upgraded.stdout
    current = cli("--store-uri", uri, "db", "current")
    assert current.exit_code == 0, current.output
    assert f"schema revision {head} (head)" in current.stdout
    again = cli("--store-uri", uri, "db", "upgrade", "--revision", "head")
    assert again.exit_code == 0
    assert "already up to date" in again.stdout


def test_upgrade_reads_the_store_uri_from_the_environment(
    workspace: Path, tmp_path: Path, cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_STORE_URI", f"sqlite:///{tmp_path / 'env.db'}")
    assert cli("db", "upgrade").exit_code == 0
    assert (tmp_path / "env.db").exists()


def test_current_on_an_empty_database(workspace: Path, cli: Invoke) -> None:
    result = cli("db", "current")
    assert result.exit_code == 0, result.output
    assert "no schema yet" in result.stdout


def test_unknown_revision_is_an_error(workspace: Path, cli: Invoke) -> None:
    result = cli("db", "upgrade", "--revision", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "'nope'" in result.stderr


def test_a_non_sql_store_is_refused(workspace: Path, cli: Invoke) -> None:
    for command in ("upgrade", "current"):
        result = cli("--store-uri", "http://tracking.example:5000", "db", command)
        assert result.exit_code == 1
        assert "SQL stores" in result.stderr and "http://" in result.stderr
