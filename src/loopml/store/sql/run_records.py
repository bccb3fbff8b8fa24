"""A run's records besides metrics, params and tags: dataset inputs, artifacts and the
environment, the part of ``SqlStore`` that reads and writes them."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from contextlib import AbstractContextManager

import sqlalchemy as sa

from loopml.core import validation as v
from loopml.core.entities import (
    ArtifactKind,
    ArtifactRef,
    DatasetInput,
    Environment,
    now_ms,
)
from loopml.errors import InvalidArgument, NotFound
from loopml.store.sql import convert
from loopml.store.sql import schema as t
from loopml.store.sql.upsert import upsert


class RunRecordsMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _run_stage(self, conn: sa.Connection, run_id: str) -> str: ...

    @abc.abstractmethod
    def _check_writable(self, conn: sa.Connection, run_id: str) -> None: ...

    def log_inputs(self, run_id: str, datasets: Iterable[DatasetInput]) -> None:
        items = list(datasets)
        for d in items:
            v.check_name(d.name, "dataset name")
            if not d.digest:
                raise InvalidArgument(f"dataset {d.name!r} needs a content digest, got ''")
        with self._write() as conn:
            self._check_writable(conn, run_id)
            for d in items:
                ds = t.datasets.c
                match = (ds.name == d.name, ds.digest == d.digest, ds.source == d.source)
                dataset_id = conn.execute(sa.select(ds.dataset_id).where(*match)).scalar()
                if dataset_id is None:
                    dataset_id = conn.execute(
                        t.datasets.insert().values(
                            name=d.name, digest=d.digest, source=d.source, source_type=d.source_type
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                upsert(
                    conn,
                    t.run_inputs,
                    [{"run_id": run_id, "dataset_id": dataset_id, "context": d.context}],
                    ["run_id", "dataset_id", "context"],
                    [],
                )

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        ds, ri = t.datasets.c, t.run_inputs.c
        with self._read() as conn:
            self._run_stage(conn, run_id)
            rows = conn.execute(
                sa.select(ds.name, ds.digest, ds.source, ds.source_type, ri.context)
                .join_from(t.run_inputs, t.datasets, ri.dataset_id == ds.dataset_id)
                .where(ri.run_id == run_id)
                .order_by(ds.name, ri.context)
            ).all()
        return [DatasetInput(*row) for row in rows]

    def record_artifact(self, run_id: str, ref: ArtifactRef) -> None:
        path = v.check_key(ref.path, "artifact path")
        row = {
            "run_id": run_id,
            "path": path,
            "digest": ref.digest,
            "size": ref.size,
            "kind": ArtifactKind(ref.kind).value,
            "created_at": ref.created_at or now_ms(),
        }
        with self._write() as conn:
            self._check_writable(conn, run_id)
            upsert(
                conn,
                t.run_artifacts,
                [row],
                ["run_id", "path"],
                ["digest", "size", "kind", "created_at"],
            )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRef]:
        a = t.run_artifacts.c
        query = sa.select(a.path, a.digest, a.size, a.kind, a.created_at).where(a.run_id == run_id)
        if prefix:
            query = query.where(a.path.startswith(prefix, autoescape=True))
        with self._read() as conn:
            self._run_stage(conn, run_id)
            rows = conn.execute(query.order_by(a.path)).all()
        return [ArtifactRef(p, d, s, ArtifactKind(k), c) for p, d, s, k, c in rows]

    def get_artifact(self, run_id: str, path: str) -> ArtifactRef:
        a = t.run_artifacts.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(a.path, a.digest, a.size, a.kind, a.created_at).where(
                    a.run_id == run_id, a.path == path
                )
            ).first()
        if row is not None:
            p, d, s, k, c = row
            return ArtifactRef(p, d, s, ArtifactKind(k), c)
        refs = self.list_artifacts(run_id)  # NotFound for an unknown run; else name the paths
        known = ", ".join(repr(r.path) for r in refs[:20]) or "none"
        raise NotFound(
            f"run {run_id!r} has no artifact {path!r} (it has: {known})", id=run_id, path=path
        )

    def set_environment(self, run_id: str, environment: Environment) -> None:
        shared, own = convert.environment_rows(run_id, environment)
        with self._write() as conn:
            self._check_writable(conn, run_id)
            upsert(conn, t.environments, [shared], ["digest"], [])
            update = [c for c in own if c != "run_id"]
            upsert(conn, t.run_environments, [own], ["run_id"], update)

    def get_environment(self, run_id: str) -> Environment | None:
        re_, env = t.run_environments.c, t.environments.c
        with self._read() as conn:
            self._run_stage(conn, run_id)
            row = conn.execute(
                sa.select(t.run_environments, env.python_version, env.platform, env.packages)
                .join_from(t.run_environments, t.environments, re_.environment_digest == env.digest)
                .where(re_.run_id == run_id)
            ).first()
        return None if row is None else convert.environment_entity(row)
