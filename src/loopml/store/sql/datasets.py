"""The dataset versions half of ``SqlStore``."""

from __future__ import annotations

import abc
import json
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core.datasets import (
    DatasetVersion,
    check_dataset_name,
    check_dataset_version,
    check_dataset_version_number,
)
from loopml.core.entities import now_ms
from loopml.core.prediction_log import check_ms
from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.store.sql import schema as t

_INSERT_ATTEMPTS = 5  # concurrent writers on PostgreSQL may race for the same number


class DatasetVersionsMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion:
        v = check_dataset_version(version)
        for _ in range(_INSERT_ATTEMPTS):
            try:
                return self._add_dataset_version(v)
            except sa.exc.IntegrityError:
                continue  # another writer took the number or stored the digest: look again
        raise InvalidState(
            f"could not number a new version of dataset {v.name!r} after {_INSERT_ATTEMPTS} "
            "attempts: too many concurrent writers; try again"
        )

    def _add_dataset_version(self, v: DatasetVersion) -> DatasetVersion:
        dv = t.dataset_versions.c
        with self._write() as conn:
            existing = conn.execute(
                sa.select(t.dataset_versions).where(dv.name == v.name, dv.digest == v.digest)
            ).first()
            if existing is not None:
                return _version(existing)
            latest = conn.execute(
                sa.select(sa.func.max(dv.version)).where(dv.name == v.name)
            ).scalar()
            number = 1 if latest is None else int(latest) + 1
            created = v.created_ms or now_ms()
            conn.execute(
                t.dataset_versions.insert().values(
                    name=v.name,
                    version=number,
                    digest=v.digest,
                    source=v.source,
                    format=v.format,
                    rows=v.rows,
                    size_bytes=v.size_bytes,
                    schema=json.dumps(v.schema, sort_keys=True),
                    profile=None if v.profile is None else json.dumps(v.profile, allow_nan=True),
                    created_ms=created,
                    created_by=v.created_by,
                )
            )
        return self.get_dataset_version(v.name, number)

    def get_dataset_version(self, name: str, version: int) -> DatasetVersion:
        check_dataset_name(name)
        number = check_dataset_version_number(version)
        dv = t.dataset_versions.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.dataset_versions).where(dv.name == name, dv.version == number)
            ).first()
            if row is not None:
                return _version(row)
            known = list(
                conn.execute(
                    sa.select(dv.version).where(dv.name == name).order_by(dv.version)
                ).scalars()
            )
        if not known:
            raise NotFound(
                f"dataset {name!r} not found: add a version first (loopml.data.add_dataset)",
                name=name,
            )
        raise NotFound(
            f"dataset {name!r} has no version {number}: versions are 1 to {known[-1]}",
            name=name,
            version=number,
        )

    def list_dataset_versions(
        self, name: str | None = None, *, after_version: int = 0, since_ms: int | None = None
    ) -> list[DatasetVersion]:
        dv = t.dataset_versions.c
        query = sa.select(t.dataset_versions).order_by(dv.name, dv.version)
        if name is not None:
            query = query.where(dv.name == check_dataset_name(name))
        after = _check_after_version(after_version)
        if after > 0:  # with a name, the primary key (name, version) serves the range
            query = query.where(dv.version > after)
        if since_ms is not None:
            query = query.where(dv.created_ms >= check_ms(since_ms, "since_ms"))
        with self._read() as conn:
            return [_version(row) for row in conn.execute(query)]


def _check_after_version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            f"invalid after_version {value!r}: must be a whole number >= 0 (the versions "
            "numbered above it are kept; 0 keeps every version)"
        )
    return value


def _version(row: sa.Row[Any]) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        digest=row.digest,
        source=row.source,
        format=row.format,
        size_bytes=int(row.size_bytes),
        version=int(row.version),
        rows=None if row.rows is None else int(row.rows),
        schema=json.loads(row.schema),
        profile=None if row.profile is None else json.loads(row.profile),
        created_ms=int(row.created_ms),
        created_by=row.created_by,
    )
