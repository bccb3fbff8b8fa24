"""The dataset versions contract: every store backend numbers and deduplicates the same way."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from loopml.core.datasets import DatasetVersion
from loopml.errors import InvalidArgument, NotFound
from loopml.store.base import MetadataStore


def _version(name: str = "churn", content: str = "a", **fields: Any) -> DatasetVersion:
    values: dict[str, Any] = {
        "name": name,
        "digest": hashlib.sha256(content.encode()).hexdigest(),
        "source": f"/data/{content}.csv",
        "format": "csv",
        "size_bytes": 10,
        "rows": 3,
        "schema": {"x": "int64", "y": "object"},
        "profile": {"rows": 3, "columns": [{"name": "x", "mean": 1.5, "std": float("nan")}]},
        "created_by": "ana",
    }
    values.update(fields)
    return DatasetVersion(**values)


def test_versions_are_numbered_per_name_from_one(store: MetadataStore) -> None:
    first = store.add_dataset_version(_version("churn", "a"))
    second = store.add_dataset_version(_version("churn", "b"))
    other = store.add_dataset_version(_version("fraud", "a"))
    assert (first.version, second.version, other.version) == (1, 2, 1)


def test_identical_content_returns_the_existing_version(store: MetadataStore) -> None:
    first = store.add_dataset_version(_version(content="a"))
    again = store.add_dataset_version(_version(content="a", source="/elsewhere/a.csv"))
    assert again == first
    assert len(store.list_dataset_versions("churn")) == 1


def test_version_round_trips_every_field(store: MetadataStore) -> None:
    added = store.add_dataset_version(_version(rows=None, schema={}, profile=None))
    got = store.get_dataset_version("churn", 1)
    assert got == added
    assert got.rows is None and got.profile is None and got.schema == {}
    full = store.add_dataset_version(_version(content="b"))
    assert full.schema == {"x": "int64", "y": "object"}
    assert full.source == "/data/b.csv" and full.created_by == "ana" and full.rows == 3
    assert full.profile is not None and full.profile["columns"][0]["mean"] == 1.5
    assert full.created_ms > 0


def test_list_orders_by_name_then_version(store: MetadataStore) -> None:
    store.add_dataset_version(_version("b", "1"))
    store.add_dataset_version(_version("a", "1"))
    store.add_dataset_version(_version("b", "2"))
    listed = [(v.name, v.version) for v in store.list_dataset_versions()]
    assert listed == [("a", 1), ("b", 1), ("b", 2)]
    assert [v.version for v in store.list_dataset_versions("b")] == [1, 2]
    assert store.list_dataset_versions("missing") == []


def test_missing_version_names_the_versions_that_exist(store: MetadataStore) -> None:
    store.add_dataset_version(_version(content="a"))
    with pytest.raises(NotFound, match="no version 7: versions are 1 to 1"):
        store.get_dataset_version("churn", 7)
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        store.get_dataset_version("nope", 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"digest": "abc"}, "invalid digest 'abc'"),
        ({"name": ""}, "invalid dataset name ''"),
        ({"size_bytes": -1}, "invalid size_bytes -1"),
        ({"format": ""}, "invalid format ''"),
    ],
)
def test_invalid_versions_are_refused(
    store: MetadataStore, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.add_dataset_version(_version(**fields))


def test_concurrent_adds_get_distinct_numbers(store: MetadataStore) -> None:
    results: list[DatasetVersion] = []
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            results.append(store.add_dataset_version(_version(content=str(i % 4))))
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = store.list_dataset_versions("churn")
    assert [v.version for v in stored] == [1, 2, 3, 4]
    assert len({v.digest for v in stored}) == 4
    assert {r.version for r in results} == {1, 2, 3, 4}


def test_list_keeps_versions_after_a_number(store: MetadataStore) -> None:
    for content in "abcd":
        store.add_dataset_version(_version("churn", content))
    store.add_dataset_version(_version("fraud", "a"))
    assert [v.version for v in store.list_dataset_versions("churn", after_version=2)] == [3, 4]
    assert [v.version for v in store.list_dataset_versions("churn", after_version=0)] == [
        1,
        2,
        3,
        4,
    ]
    assert store.list_dataset_versions("churn", after_version=4) == []
    assert [(v.name, v.version) for v in store.list_dataset_versions(after_version=1)] == [
        ("churn", 2),
        ("churn", 3),
        ("churn", 4),
    ]


def test_list_keeps_versions_created_since_a_time(store: MetadataStore) -> None:
    t0 = 1_700_000_000_000
    # numbered in the order added, whatever their creation times
    store.add_dataset_version(_version("churn", "a", created_ms=t0 + 20))
    store.add_dataset_version(_version("churn", "b", created_ms=t0 + 10))
    store.add_dataset_version(_version("churn", "c", created_ms=t0 + 30))
    store.add_dataset_version(_version("fraud", "a", created_ms=t0 + 40))
    since = store.list_dataset_versions("churn", since_ms=t0 + 20)
    assert [(v.version, v.created_ms) for v in since] == [(1, t0 + 20), (3, t0 + 30)]
    both = store.list_dataset_versions("churn", after_version=1, since_ms=t0 + 10)
    assert [v.version for v in both] == [2, 3]
    assert [(v.name, v.version) for v in store.list_dataset_versions(since_ms=t0 + 30)] == [
        ("churn", 3),
        ("fraud", 1),
    ]
    assert store.list_dataset_versions("churn", since_ms=t0 + 31) == []
    full = store.list_dataset_versions("churn", after_version=2)[0]
    assert full == store.get_dataset_version("churn", 3)  # every field, schema and profile


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"after_version": -1}, "invalid after_version -1: must be a whole number >= 0"),
        ({"after_version": "2"}, "invalid after_version '2'"),
        ({"after_version": 1.5}, "invalid after_version 1.5"),
        ({"after_version": True}, "invalid after_version True"),
        ({"since_ms": "yesterday"}, "invalid since_ms 'yesterday'"),
        ({"since_ms": 1.5}, "invalid since_ms 1.5"),
    ],
)
def test_list_refuses_bad_filters_naming_them(
    store: MetadataStore, kwargs: dict[str, Any], message: str
) -> None:
    store.add_dataset_version(_version())
    with pytest.raises(InvalidArgument, match=message):
        store.list_dataset_versions("churn", **kwargs)
