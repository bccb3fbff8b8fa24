"""The pipelines half of ``SqlStore``: pipeline runs and the runs of their steps.

Each step row carries ``seq``, its place in the order rows were first saved (across all
runs). Replacing a step keeps its number, so a run's steps list in the order they started
even after they are updated. New numbers are drawn under the write lock: SQLite serialises
writers with ``BEGIN IMMEDIATE``, PostgreSQL with a transaction-scoped advisory lock.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import sqlalchemy as sa

from loopml.core.alerts import check_limit
from loopml.core.entities import now_ms
from loopml.core.pipelines import (
    PipelineRun,
    PipelineStatus,
    StepInput,
    StepOutput,
    StepRun,
    StepStatus,
    check_node_name,
    check_pipeline_name,
    check_pipeline_run_id,
)
from loopml.core.prediction_log import check_ms
from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.store.sql import schema as t

_SEQ_LOCK_KEY = 0x6C6F6F706D6C0001  # PostgreSQL advisory lock: numbers new step rows
_STEP_KEYS = ["pipeline_run_id", "name"]
E = TypeVar("E", bound=enum.Enum)


class PipelinesMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    # -- pipeline runs -----------------------------------------------------------------------
    def create_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        row = _run_row(run)
        if row["start_ms"] == 0:
            row["start_ms"] = now_ms()
        try:
            with self._write() as conn:
                conn.execute(t.pipeline_runs.insert().values(**row))
        except sa.exc.IntegrityError:  # the run id is the only constraint an insert can break
            raise AlreadyExists(
                f"pipeline run {run.run_id!r} already exists: pipeline run ids are unique",
                id=run.run_id,
            ) from None
        return _pipeline_run_entity(row)

    def update_pipeline_run(
        self,
        run_id: str,
        *,
        status: PipelineStatus | None = None,
        end_ms: int | None = None,
        error: str | None = None,
        tracking_run_id: str | None = None,
    ) -> PipelineRun:
        check_pipeline_run_id(run_id)
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = enum_member(PipelineStatus, status, "pipeline run status").value
        if end_ms is not None:
            values["end_ms"] = check_ms(end_ms, "end_ms")
        if error is not None:
            values["error"] = check_str(error, "error")
        if tracking_run_id is not None:
            values["tracking_run_id"] = check_str(tracking_run_id, "tracking_run_id", 32)
        pr = t.pipeline_runs.c
        with self._write() as conn:
            if values:
                conn.execute(t.pipeline_runs.update().where(pr.run_id == run_id).values(**values))
            row = conn.execute(sa.select(t.pipeline_runs).where(pr.run_id == run_id)).first()
        if row is None:
            raise _run_not_found(run_id)
        return _pipeline_run_entity(row._mapping)

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        check_pipeline_run_id(run_id)
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.pipeline_runs).where(t.pipeline_runs.c.run_id == run_id)
            ).first()
        if row is None:
            raise _run_not_found(run_id)
        return _pipeline_run_entity(row._mapping)

    def list_pipeline_runs(
        self,
        pipeline: str | None = None,
        *,
        status: PipelineStatus | None = None,
        limit: int = 100,
    ) -> list[PipelineRun]:
        pr = t.pipeline_runs.c
        query = sa.select(t.pipeline_runs)
        if pipeline is not None:
            query = query.where(pr.pipeline == check_pipeline_name(pipeline))
        if status is not None:
            query = query.where(
                pr.status == enum_member(PipelineStatus, status, "pipeline run status").value
            )
        query = query.order_by(pr.start_ms.desc(), pr.run_id.desc()).limit(check_limit(limit))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_pipeline_run_entity(row._mapping) for row in rows]

    # -- step runs ---------------------------------------------------------------------------
    def save_step_run(self, step: StepRun) -> None:
        row = _step_row(step)
        run_id = row["pipeline_run_id"]
        sr = t.step_runs.c
        try:
            with self._write() as conn:
                found = conn.execute(
                    sa.select(t.pipeline_runs.c.run_id).where(t.pipeline_runs.c.run_id == run_id)
                ).first()
                if found is None:
                    raise _run_not_found(run_id, f" (saving its step {row['name']!r})")
                find_seq = sa.select(sr.seq).where(
                    sr.pipeline_run_id == run_id, sr.name == row["name"]
                )
                seq = conn.execute(find_seq).scalar()
                if seq is None and conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEQ_LOCK_KEY})
                    seq = conn.execute(find_seq).scalar()  # a racing writer may have added it
                if seq is None:
                    seq = int(conn.execute(sa.select(sa.func.max(sr.seq))).scalar() or 0) + 1
                    conn.execute(t.step_runs.insert(), {**row, "seq": seq})
                else:  # a plain UPDATE: compiled once and cached, unlike an upsert
                    changes = {c: v for c, v in row.items() if c not in _STEP_KEYS}
                    conn.execute(
                        t.step_runs.update().where(
                            sr.pipeline_run_id == run_id, sr.name == row["name"]
                        ),
                        changes,
                    )
        except sa.exc.IntegrityError:  # the run's row went away meanwhile (seq cannot clash)
            raise _run_not_found(run_id, f" (saving its step {row['name']!r})") from None

    def list_step_runs(
        self,
        pipeline_run_id: str | None = None,
        *,
        pipeline: str | None = None,
        name: str | None = None,
        cache_key: str | None = None,
        tracking_run_id: str | None = None,
        statuses: Sequence[StepStatus] | None = None,
        limit: int = 1000,
    ) -> list[StepRun]:
        sr = t.step_runs.c
        query = sa.select(t.step_runs)
        if pipeline_run_id is not None:
            query = query.where(sr.pipeline_run_id == check_pipeline_run_id(pipeline_run_id))
        if pipeline is not None:
            query = query.where(sr.pipeline == check_pipeline_name(pipeline))
        if name is not None:
            query = query.where(sr.name == check_node_name(name))
        if cache_key is not None:
            query = query.where(sr.cache_key == check_str(cache_key, "cache_key", 64))
        if tracking_run_id is not None:
            query = query.where(
                sr.tracking_run_id == check_str(tracking_run_id, "tracking_run_id", 32)
            )
        if statuses is not None:
            query = query.where(sr.status.in_(enum_values(StepStatus, statuses, "step status")))
        if pipeline_run_id is not None:
            query = query.order_by(sr.seq)
        else:
            query = query.order_by(sr.start_ms.desc().nulls_last(), sr.seq.desc())
        query = query.limit(check_limit(limit))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_step_entity(row) for row in rows]


# -- checks shared with the schedules half -------------------------------------------------------
def check_str(
    value: object, what: str, max_length: int | None = None, *, allow_empty: bool = True
) -> str:
    """A string, non-empty unless ``allow_empty``, of at most ``max_length`` characters."""
    if not isinstance(value, str) or (not value and not allow_empty):
        rule = "a string" if allow_empty else "a non-empty string"
        raise InvalidArgument(f"invalid {what} {value!r}: must be {rule}")
    if max_length is not None and len(value) > max_length:
        raise InvalidArgument(
            f"invalid {what} {value[:40]!r}...: {len(value)} characters, at most "
            f"{max_length} allowed"
        )
    return value


def check_flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {what} {value!r}: must be True or False")
    return value


def enum_member(cls: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``cls`` (members and their values accepted)."""
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(str(m.value) for m in cls)
        raise InvalidArgument(f"invalid {what} {value!r}: must be one of {valid}") from None


def enum_values(cls: type[E], values: object, what: str) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | set | frozenset):
        raise InvalidArgument(f"invalid statuses {values!r}: must be a list of {what} values")
    return [str(enum_member(cls, v, what).value) for v in values]


def json_object(value: object, what: str) -> str:
    """A mapping with string keys, as JSON text; ``InvalidArgument`` names ``what``."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"invalid {what} {value!r}: must be a dict (JSON object) with string keys"
        )
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise InvalidArgument(
            f"invalid {what}: keys must be strings, got {bad[0]!r} ({type(bad[0]).__name__})"
        )
    return _dumps(dict(value), what)


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"invalid {what}: {exc}; must hold only JSON values (str, int, float, bool, None, "
            "lists and dicts with string keys)"
        ) from None


def _str_list(values: object, what: str, check: Any = None) -> str:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidArgument(f"invalid {what} {values!r}: must be a tuple of strings")
    for value in values:
        if check is not None:
            check(value)
        else:
            check_str(value, f"entry of {what}", allow_empty=False)
    return json.dumps(list(values))


def _records(values: object, cls: type[Any], what: str) -> str:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidArgument(f"invalid {what} {values!r}: must be a tuple of {cls.__name__}")
    for value in values:
        if not isinstance(value, cls):
            raise InvalidArgument(f"invalid entry of {what} {value!r}: must be a {cls.__name__}")
    return _dumps([dataclasses.asdict(v) for v in values], what)


def _optional_ms(value: object, what: str) -> int | None:
    return None if value is None else check_ms(value, what)


# -- rows and entities -----------------------------------------------------------------------------
def _run_not_found(run_id: str, doing: str = "") -> NotFound:
    return NotFound(
        f"pipeline run {run_id!r} not found{doing}: create it first (create_pipeline_run)",
        id=run_id,
    )


def _run_row(run: PipelineRun) -> dict[str, Any]:
    if not isinstance(run, PipelineRun):
        raise InvalidArgument(f"invalid pipeline run {run!r}: must be a PipelineRun")
    resumed_from = check_str(run.resumed_from, "resumed_from")
    if resumed_from:
        check_pipeline_run_id(resumed_from)
    return {
        "run_id": check_pipeline_run_id(run.run_id),
        "pipeline": check_pipeline_name(run.pipeline),
        "status": enum_member(PipelineStatus, run.status, "pipeline run status").value,
        "ref": check_str(run.ref, "ref"),
        "params": json_object(run.params, f"params of pipeline run {run.run_id!r}"),
        "executor": check_str(run.executor, "executor", 250, allow_empty=False),
        "start_ms": check_ms(run.start_ms, "start_ms"),
        "end_ms": _optional_ms(run.end_ms, "end_ms"),
        "tracking_run_id": check_str(run.tracking_run_id, "tracking_run_id", 32),
        "resumed_from": resumed_from,
        "trigger": check_str(run.trigger, "trigger", 250, allow_empty=False),
        "user": check_str(run.user, "user", 250),
        "error": check_str(run.error, "error"),
    }


def _pipeline_run_entity(row: Mapping[Any, Any]) -> PipelineRun:
    return PipelineRun(
        run_id=row["run_id"],
        pipeline=row["pipeline"],
        status=PipelineStatus(row["status"]),
        ref=row["ref"],
        params=json.loads(row["params"]),
        executor=row["executor"],
        start_ms=int(row["start_ms"]),
        end_ms=None if row["end_ms"] is None else int(row["end_ms"]),
        tracking_run_id=row["tracking_run_id"],
        resumed_from=row["resumed_from"],
        trigger=row["trigger"],
        user=row["user"],
        error=row["error"],
    )


def _step_row(s: StepRun) -> dict[str, Any]:
    if not isinstance(s, StepRun):
        raise InvalidArgument(f"invalid step run {s!r}: must be a StepRun")
    name = check_node_name(s.name)
    attempts = s.attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise InvalidArgument(
            f"invalid attempts {attempts!r} of step {name!r}: must be an integer >= 0"
        )
    return {
        "pipeline_run_id": check_pipeline_run_id(s.pipeline_run_id),
        "name": name,
        "pipeline": check_pipeline_name(s.pipeline),
        "step": check_str(s.step, "step function name", 500, allow_empty=False),
        "status": enum_member(StepStatus, s.status, "step status").value,
        "cache_key": check_str(s.cache_key, "cache_key", 64),
        "key_parts": json_object(s.key_parts, f"key_parts of step {name!r}"),
        "reason": check_str(s.reason, "reason"),
        "upstream": _str_list(s.upstream, f"upstream of step {name!r}", check_node_name),
        "inputs": _records(s.inputs, StepInput, f"inputs of step {name!r}"),
        "params": json_object(s.params, f"params of step {name!r}"),
        "outputs": _records(s.outputs, StepOutput, f"outputs of step {name!r}"),
        "datasets_read": _str_list(s.datasets_read, f"datasets_read of step {name!r}"),
        "datasets_written": _str_list(s.datasets_written, f"datasets_written of step {name!r}"),
        "model_versions": _str_list(s.model_versions, f"model_versions of step {name!r}"),
        "tracking_run_id": check_str(s.tracking_run_id, "tracking_run_id", 32),
        "cached_from": check_str(s.cached_from, "cached_from", 250),
        "attempts": attempts,
        "start_ms": _optional_ms(s.start_ms, "start_ms"),
        "end_ms": _optional_ms(s.end_ms, "end_ms"),
        "error": check_str(s.error, "error"),
        "logs_digest": check_str(s.logs_digest, "logs_digest", 128),
        "resources": json_object(s.resources, f"resources of step {name!r}"),
    }


def _step_entity(row: sa.Row[Any]) -> StepRun:
    return StepRun(
        pipeline_run_id=row.pipeline_run_id,
        name=row.name,
        pipeline=row.pipeline,
        step=row.step,
        status=StepStatus(row.status),
        cache_key=row.cache_key,
        key_parts=json.loads(row.key_parts),
        reason=row.reason,
        upstream=tuple(json.loads(row.upstream)),
        inputs=tuple(StepInput(**i) for i in json.loads(row.inputs)),
        params=json.loads(row.params),
        outputs=tuple(StepOutput(**o) for o in json.loads(row.outputs)),
        datasets_read=tuple(json.loads(row.datasets_read)),
        datasets_written=tuple(json.loads(row.datasets_written)),
        model_versions=tuple(json.loads(row.model_versions)),
        tracking_run_id=row.tracking_run_id,
        cached_from=row.cached_from,
        attempts=int(row.attempts),
        start_ms=None if row.start_ms is None else int(row.start_ms),
        end_ms=None if row.end_ms is None else int(row.end_ms),
        error=row.error,
        logs_digest=row.logs_digest,
        resources=json.loads(row.resources),
    )
