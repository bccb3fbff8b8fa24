"""Backends come from the URI scheme; bad URIs get an error that says what is valid."""

from __future__ import annotations

import pytest

from loopml.errors import InvalidArgument
from loopml.store import open_store
from loopml.store.sql import SqlStore


def test_sqlite_uri_opens_a_sql_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(store, SqlStore)
    store.close()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mysql://root@localhost/x", "unsupported store URI 'mysql://root@localhost/x'"),
        ("just-a-path", "expected one of"),
        ("sqlite://", "needs a file path"),
        ("sqlite:///:memory:", "needs a file path"),
    ],
)
def test_bad_store_uris_say_what_is_valid(uri: str, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        open_store(uri)


def test_postgres_alias_scheme_is_accepted(postgres_url: str) -> None:
    store = open_store(postgres_url.replace("postgresql+psycopg://", "postgres://", 1))
    assert store.get_experiment("0").name == "Default"
    store.close()


def test_unreachable_postgres_is_store_unavailable_without_the_password() -> None:
    from loopml.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="cannot open the metadata store") as err:
        open_store("postgresql+psycopg://user:s3cret@127.0.0.1:1/nope?connect_timeout=2")
    assert "s3cret" not in str(err.value)
    assert "127.0.0.1:1" in str(err.value)


def test_sqlite_path_that_cannot_be_created_is_store_unavailable() -> None:
    from loopml.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match=r"/proc/nope/x\.db"):
        open_store("sqlite:////proc/nope/x.db")
