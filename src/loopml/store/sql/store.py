"""``SqlStore``: the metadata store on SQLite or PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from loopml.core import series
from loopml.core import validation as v
from loopml.core.entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Run,
    RunStatus,
    now_ms,
)
from loopml.core.names import generate_run_name
from loopml.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    NotFound,
    StoreUnavailable,
)
from loopml.store.base import DEFAULT_EXPERIMENT_ID, MetadataStore
from loopml.store.sql import convert
from loopml.store.sql import schema as t
from loopml.store.sql.alerts import AlertsMixin
from loopml.store.sql.datasets import DatasetVersionsMixin
from loopml.store.sql.engine import WRITE, create_engine
from loopml.store.sql.loop import LoopMixin
from loopml.store.sql.migrate import ensure_schema
from loopml.store.sql.paging import decode_page_token, encode_page_token
from loopml.store.sql.pipelines import PipelinesMixin
from loopml.store.sql.prediction_log import PredictionLogMixin
from loopml.store.sql.registry import RegistryMixin
from loopml.store.sql.run_records import RunRecordsMixin
from loopml.store.sql.schedules import SchedulesMixin
from loopml.store.sql.upsert import insert_for, upsert

_LOCK_RETRIES = 5


class SqlStore(
    RunRecordsMixin,
    RegistryMixin,
    PredictionLogMixin,
    AlertsMixin,
    DatasetVersionsMixin,
    PipelinesMixin,
    SchedulesMixin,
    LoopMixin,
    MetadataStore,
):
    """The metadata store on a SQLAlchemy engine. Build it with :meth:`from_uri`."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    @classmethod
    def from_uri(
        cls, uri: str, *, busy_timeout_s: float = 30.0, sqlite_synchronous: str = "FULL"
    ) -> SqlStore:
        """Open the store at ``uri``; an empty database gets the schema, an old one an error."""
        try:
            engine = create_engine(
                uri, busy_timeout_s=busy_timeout_s, sqlite_synchronous=sqlite_synchronous
            )
            ensure_schema(engine)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
            shown = sa.make_url(uri).render_as_string(hide_password=True)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise StoreUnavailable(
                f"cannot open the metadata store {shown!r}: {reason}", uri=shown
            ) from exc
        return cls(engine)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            yield conn

    def _retrying(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a write; on SQLite retry the rare lock error that outlives the busy timeout."""
        for attempt in range(_LOCK_RETRIES):
            try:
                return fn(*args, **kwargs)
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        v.check_name(name, "experiment name")
        tag_rows = convert.tag_rows(tags)
        now = now_ms()
        with self._write() as conn:
            if conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)
            ).first():
                raise AlreadyExists(f"experiment {name!r} already exists", name=name)
            result = conn.execute(
                t.experiments.insert().values(
                    name=name,
                    artifact_location=artifact_location,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    created_at=now,
                    updated_at=now,
                )
            )
            experiment_id = str(result.inserted_primary_key[0])  # type: ignore[index]
            if tag_rows:
                conn.execute(
                    t.experiment_tags.insert(),
                    [{"experiment_id": int(experiment_id), **row} for row in tag_rows],
                )
        return self.get_experiment(experiment_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = convert.experiment_key(experiment_id)
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.experiments).where(t.experiments.c.experiment_id == key)
            ).first()
            if row is None:
                raise NotFound(f"experiment {experiment_id!r} not found", id=experiment_id)
            return self._experiment(conn, row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.experiments).where(t.experiments.c.name == name)).first()
            return None if row is None else self._experiment(conn, row)

    def list_experiments(
        self,
        *,
        lifecycle_stage: LifecycleStage | None = LifecycleStage.ACTIVE,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        convert.check_max_results(max_results)
        offset = decode_page_token(page_token)
        query = sa.select(t.experiments).order_by(t.experiments.c.experiment_id)
        if lifecycle_stage is not None:
            query = query.where(t.experiments.c.lifecycle_stage == lifecycle_stage.value)
        with self._read() as conn:
            rows = conn.execute(query.offset(offset).limit(max_results + 1)).all()
            items = [self._experiment(conn, row) for row in rows[:max_results]]
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return Page(items, token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        v.check_name(new_name, "experiment name")
        key = convert.experiment_key(experiment_id)
        with self._write() as conn:
            clash = conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == new_name)
            ).first()
            if clash and clash[0] != key:
                raise AlreadyExists(f"experiment {new_name!r} already exists", name=new_name)
            self._update_experiment(conn, key, experiment_id, name=new_name)
        return self.get_experiment(experiment_id)

    def set_experiment_lifecycle(self, experiment_id: str, stage: LifecycleStage) -> None:
        if experiment_id == DEFAULT_EXPERIMENT_ID and stage is LifecycleStage.DELETED:
            raise InvalidState("the default experiment (id '0') cannot be deleted")
        with self._write() as conn:
            self._update_experiment(
                conn,
                convert.experiment_key(experiment_id),
                experiment_id,
                lifecycle_stage=stage.value,
            )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        v.check_key(key, "tag key")
        value = v.tag_value(key, value)
        exp_key = convert.experiment_key(experiment_id)
        with self._write() as conn:
            self._update_experiment(conn, exp_key, experiment_id)
            upsert(
                conn,
                t.experiment_tags,
                [{"experiment_id": exp_key, "key": key, "value": value}],
                ["experiment_id", "key"],
                ["value"],
            )

    def _update_experiment(
        self, conn: sa.Connection, key: int, experiment_id: str, **values: Any
    ) -> None:
        result = conn.execute(
            t.experiments.update()
            .where(t.experiments.c.experiment_id == key)
            .values(updated_at=now_ms(), **values)
        )
        if result.rowcount == 0:
            raise NotFound(f"experiment {experiment_id!r} not found", id=experiment_id)

    def _experiment(self, conn: sa.Connection, row: sa.Row[Any]) -> Experiment:
        tags = conn.execute(
            sa.select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                t.experiment_tags.c.experiment_id == row.experiment_id
            )
        ).all()
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=dict(tags),
        )

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        user: str = "",
        artifact_uri: str = "",
        host: str = "",
        pid: int | None = None,
    ) -> Run:
        run_name = generate_run_name() if name is None else v.check_name(name, "run name")
        tag_rows = convert.tag_rows(tags)
        exp_key = convert.experiment_key(experiment_id)
        run_id = uuid.uuid4().hex
        start = now_ms() if start_time is None else v.check_timestamp(start_time)
        with self._write() as conn:
            stage = conn.execute(
                sa.select(t.experiments.c.lifecycle_stage).where(
                    t.experiments.c.experiment_id == exp_key
                )
            ).scalar()
            if stage is None:
                raise NotFound(f"experiment {experiment_id!r} not found", id=experiment_id)
            if stage != LifecycleStage.ACTIVE.value:
                raise InvalidState(
                    f"experiment {experiment_id!r} is deleted: restore it before adding runs"
                )
            if parent_run_id is not None:
                self._run_stage(conn, parent_run_id)
            conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    experiment_id=exp_key,
                    name=run_name,
                    status=RunStatus.RUNNING.value,
                    start_time=start,
                    parent_run_id=parent_run_id,
                    user=user,
                    artifact_uri=artifact_uri,
                    lifecycle_stage=LifecycleStage.ACTIVE.value,
                    host=host,
                    pid=pid,
                    heartbeat_time=start,
                )
            )
            if tag_rows:
                conn.execute(t.run_tags.insert(), [{"run_id": run_id, **r} for r in tag_rows])
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            runs = self._load_runs(conn, [run_id])
        if not runs:
            raise NotFound(f"run {run_id!r} not found", id=run_id)
        return runs[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
        notes: str | None = None,
    ) -> Run:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = convert.run_status(status).value
        if end_time is not None:
            values["end_time"] = v.check_timestamp(end_time)
        if name is not None:
            values["name"] = v.check_name(name, "run name")
        if notes is not None:
            if len(notes) > v.MAX_NOTES_LENGTH:
                raise InvalidArgument(
                    f"run notes are {len(notes)} characters, at most {v.MAX_NOTES_LENGTH} allowed"
                )
            values["notes"] = notes
        if values:
            with self._write() as conn:
                result = conn.execute(
                    t.runs.update().where(t.runs.c.run_id == run_id).values(**values)
                )
                if result.rowcount == 0:
                    raise NotFound(f"run {run_id!r} not found", id=run_id)
        return self.get_run(run_id)

    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        with self._write() as conn:
            result = conn.execute(
                t.runs.update().where(t.runs.c.run_id == run_id).values(lifecycle_stage=stage.value)
            )
            if result.rowcount == 0:
                raise NotFound(f"run {run_id!r} not found", id=run_id)

    def heartbeat(self, run_ids: Sequence[str], time_ms: int) -> None:
        if not run_ids:
            return
        with self._write() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.run_id.in_(list(run_ids)))
                .values(heartbeat_time=time_ms)
            )

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        series = convert.group_metrics(metrics)
        param_rows = {
            v.check_key(k, "param key"): v.param_value(k, val) for k, val in (params or {}).items()
        }
        tag_rows = convert.tag_rows(tags)
        self._retrying(self._log_batch, run_id, series, param_rows, tag_rows)

    def _log_batch(
        self,
        run_id: str,
        series: dict[str, convert.Series],
        param_rows: dict[str, str],
        tag_rows: list[dict[str, str]],
    ) -> None:
        with self._write() as conn:
            self._check_writable(conn, run_id)
            if param_rows:
                self._insert_params(conn, run_id, param_rows)
            if tag_rows:
                upsert(
                    conn,
                    t.run_tags,
                    [{"run_id": run_id, **row} for row in tag_rows],
                    ["run_id", "key"],
                    ["value"],
                )
            if series:
                conn.execute(t.metric_chunks.insert(), convert.chunk_rows(run_id, series))
                self._update_latest(conn, run_id, series)

    def _insert_params(self, conn: sa.Connection, run_id: str, rows: dict[str, str]) -> None:
        existing = dict(
            conn.execute(
                sa.select(t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id == run_id, t.params.c.key.in_(list(rows))
                )
            ).all()
        )
        for key, old in existing.items():
            if old != rows[key]:
                raise InvalidState(
                    f"param {key!r} of run {run_id!r} is already {old!r} and cannot be changed "
                    f"to {rows[key]!r}: params are write-once (log a new run, or a metric/tag)",
                    key=key,
                )
        new = [{"run_id": run_id, "key": k, "value": val} for k, val in rows.items()]
        new = [row for row in new if row["key"] not in existing]
        if new:
            conn.execute(t.params.insert(), new)

    def _update_latest(
        self, conn: sa.Connection, run_id: str, series: dict[str, convert.Series]
    ) -> None:
        values = convert.latest_rows(run_id, series)
        table = t.latest_metrics
        insert = insert_for(conn, table).values(values)
        excluded = insert.excluded
        newer = sa.or_(
            excluded.step > table.c.step,
            sa.and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp),
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "value": excluded.value,
                    "step": excluded.step,
                    "timestamp": excluded.timestamp,
                },
                where=newer,
            )
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            self._check_writable(conn, run_id)
            result = conn.execute(
                t.run_tags.delete().where(t.run_tags.c.run_id == run_id, t.run_tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"run {run_id!r} has no tag {key!r}", id=run_id, key=key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        c = t.metric_chunks.c
        with self._read() as conn:
            self._run_stage(conn, run_id)
            chunks = conn.execute(
                sa.select(c.steps, c["values"], c.timestamps)
                .where(c.run_id == run_id, c.key == key)
                .order_by(c.id)
            ).all()
        return series.history(key, [(s, v, ts) for s, v, ts in chunks])

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        lifecycle_stage: LifecycleStage | None = LifecycleStage.ACTIVE,
    ) -> Page[Run]:
        convert.check_max_results(max_results)
        offset = decode_page_token(page_token)
        keys = (
            None if experiment_ids is None else [convert.experiment_key(e) for e in experiment_ids]
        )
        from loopml.store.sql.search import compile_search  # and the filter grammar

        query = compile_search(keys, filter, order_by, lifecycle_stage)
        with self._read() as conn:
            ids = list(conn.execute(query.offset(offset).limit(max_results + 1)).scalars())
            runs = self._load_runs(conn, ids[:max_results])
        token = encode_page_token(offset + max_results) if len(ids) > max_results else None
        return Page(runs, token)

    def _load_runs(self, conn: sa.Connection, run_ids: Sequence[str]) -> list[Run]:
        """Runs in the order of ``run_ids``, each with params, tags and latest metrics."""
        if not run_ids:
            return []
        ids = list(run_ids)
        rows = {
            r.run_id: r for r in conn.execute(sa.select(t.runs).where(t.runs.c.run_id.in_(ids)))
        }
        params: dict[str, dict[str, str]] = {i: {} for i in rows}
        tags: dict[str, dict[str, str]] = {i: {} for i in rows}
        metrics: dict[str, dict[str, float]] = {i: {} for i in rows}
        for table, target in ((t.params, params), (t.run_tags, tags)):
            for rid, key, value in conn.execute(
                sa.select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(ids))
            ):
                target[rid][key] = value
        lm = t.latest_metrics.c
        for rid, key, value in conn.execute(
            sa.select(lm.run_id, lm.key, lm.value).where(lm.run_id.in_(ids))
        ):
            metrics[rid][key] = float("nan") if value is None else value
        return [
            convert.run_entity(rows[i], params[i], metrics[i], tags[i])
            for i in run_ids
            if i in rows
        ]

    def _run_stage(self, conn: sa.Connection, run_id: str) -> str:
        stage = conn.execute(
            sa.select(t.runs.c.lifecycle_stage).where(t.runs.c.run_id == run_id)
        ).scalar()
        if stage is None:
            raise NotFound(f"run {run_id!r} not found", id=run_id)
        return str(stage)

    def _check_writable(self, conn: sa.Connection, run_id: str) -> None:
        if self._run_stage(conn, run_id) != LifecycleStage.ACTIVE.value:
            raise InvalidState(f"run {run_id!r} is deleted: restore it before logging to it")
