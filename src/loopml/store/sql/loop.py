"""The closed-loop half of ``SqlStore``: one row per iteration of the loop for a model.

At most one iteration per model is open (RUNNING or WAITING). The row of an open iteration
carries the model name in ``open_model``, NULL once it is closed, and a UNIQUE constraint on
that column makes the rule atomic on both databases: of two controllers racing to open an
iteration for one model, the database lets one insert in and the other gets ``AlreadyExists``
naming the winner. Numbers (1, 2, ... per model) are drawn as for dataset versions: the next
after the largest, retried when a concurrent writer on PostgreSQL took it first. The store
assigns the number; the one in the ``LoopIteration`` given to create is ignored.

``trigger`` and ``record`` are stored as JSON text and must hold only JSON values: dicts with
string keys, lists (tuples come back as lists), strings, integers, booleans, None and finite
floats. NaN and infinity are refused with ``InvalidArgument`` naming the key that holds one
(rather than stored as strings, which would not come back as the float they were); a metric
that came out NaN is recorded as None or as a string the caller chooses.

Only the owner changes an iteration (a compare-and-set on ``owner``); a controller whose owner
stopped beating is replaced with ``take_over_loop_iteration``, which also sets ``updated_ms``
to the taker's ``now_ms``.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core.alerts import check_limit
from loopml.core.entities import now_ms
from loopml.core.loop import IterationStatus, LoopIteration, Outcome, Stage, check_iteration_id
from loopml.core.prediction_log import check_ms, check_takeover_times
from loopml.core.registry import check_model_name
from loopml.errors import AlreadyExists, InvalidArgument, InvalidState, LoopmlError, NotFound
from loopml.store.sql import schema as t
from loopml.store.sql.pipelines import check_str, enum_member, enum_values

_INSERT_ATTEMPTS = 5  # concurrent writers on PostgreSQL may race for the same number
_OPEN = (IterationStatus.RUNNING.value, IterationStatus.WAITING.value)
_OWNER_LENGTH = 250


class LoopMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def create_loop_iteration(self, iteration: LoopIteration) -> LoopIteration:
        row = _iteration_row(iteration)
        now = now_ms()
        for column in ("created_ms", "updated_ms", "heartbeat_ms"):
            if row[column] == 0:
                row[column] = now
        for _ in range(_INSERT_ATTEMPTS):
            try:
                return self._create_loop_iteration(row)
            except sa.exc.IntegrityError:
                # Another writer inserted meanwhile (PostgreSQL; SQLite writers take turns):
                # the id, the model's open slot or the number. The next attempt's checks say
                # which, and only a number taken is tried again.
                continue
        raise InvalidState(
            f"could not number a new loop iteration of model {row['model_name']!r} after "
            f"{_INSERT_ATTEMPTS} attempts: too many concurrent writers; try again",
            model=row["model_name"],
        )

    def _create_loop_iteration(self, values: dict[str, Any]) -> LoopIteration:
        li = t.loop_iterations.c
        model = values["model_name"]
        with self._write() as conn:
            taken = conn.execute(
                sa.select(li.model_name).where(li.iteration_id == values["iteration_id"])
            ).first()
            if taken is not None:
                raise AlreadyExists(
                    f"loop iteration {values['iteration_id']!r} already exists (of model "
                    f"{taken.model_name!r}): loop iteration ids are unique",
                    id=values["iteration_id"],
                )
            clash = _open_clash(conn, model)
            if clash is not None:
                raise clash
            latest = conn.execute(
                sa.select(sa.func.max(li.number)).where(li.model_name == model)
            ).scalar()
            row = {**values, "number": 1 if latest is None else int(latest) + 1}
            conn.execute(t.loop_iterations.insert().values(**row, open_model=model))
        return _iteration(row)

    def update_loop_iteration(
        self,
        iteration_id: str,
        *,
        owner: str,
        status: IterationStatus | None = None,
        stage: Stage | None = None,
        outcome: Outcome | None = None,
        record: dict[str, Any] | None = None,
        heartbeat_ms: int | None = None,
    ) -> LoopIteration:
        check_iteration_id(iteration_id)
        _check_owner(owner)
        li = t.loop_iterations.c
        values: dict[str, Any] = {}
        if status is not None:
            member = enum_member(IterationStatus, status, "loop iteration status")
            values["status"] = member.value
            values["open_model"] = li.model_name if member.open else None
        if stage is not None:
            values["stage"] = enum_member(Stage, stage, "loop iteration stage").value
        if outcome is not None:
            values["outcome"] = enum_member(Outcome, outcome, "loop iteration outcome").value
        if record is not None:
            values["record"] = _json_text(record, "record", iteration_id)
        if heartbeat_ms is not None:
            values["heartbeat_ms"] = check_ms(heartbeat_ms, "heartbeat_ms")
        values["updated_ms"] = now_ms()
        find = sa.select(t.loop_iterations).where(li.iteration_id == iteration_id)
        try:
            with self._write() as conn:
                result = conn.execute(
                    t.loop_iterations.update()
                    .where(li.iteration_id == iteration_id, li.owner == owner)
                    .values(**values)
                )
                row = conn.execute(find).first()
        except sa.exc.IntegrityError:  # reopened while another iteration of the model is open
            raise self._reopen_error(iteration_id) from None
        if row is None:
            raise _not_found(iteration_id)
        if result.rowcount == 0:
            raise InvalidState(
                f"loop iteration {iteration_id!r} is held by {row.owner!r}, not {owner!r}: "
                "another controller took it over",
                id=iteration_id,
                owner=row.owner,
            )
        return _iteration(row._mapping)

    def _reopen_error(self, iteration_id: str) -> LoopmlError:
        """Why reopening ``iteration_id`` broke the one-open-iteration rule."""
        li = t.loop_iterations.c
        with self._read() as conn:
            model = conn.execute(
                sa.select(li.model_name).where(li.iteration_id == iteration_id)
            ).scalar()
            if model is None:
                return _not_found(iteration_id)
            clash = _open_clash(conn, model)
        if clash is not None:
            return clash
        return InvalidState(  # the other iteration closed meanwhile
            f"could not reopen loop iteration {iteration_id!r}: another iteration of its model "
            "was open a moment ago; try again",
            id=iteration_id,
        )

    def take_over_loop_iteration(
        self, iteration_id: str, *, owner: str, stale_before_ms: int, now_ms: int
    ) -> bool:
        check_iteration_id(iteration_id)
        _check_owner(owner)
        stale, now = check_takeover_times(stale_before_ms, now_ms)
        li = t.loop_iterations.c
        with self._write() as conn:
            result = conn.execute(
                t.loop_iterations.update()
                .where(
                    li.iteration_id == iteration_id,
                    li.status.in_(_OPEN),
                    li.heartbeat_ms < stale,
                )
                .values(owner=owner, heartbeat_ms=now, updated_ms=now)
            )
            return bool(result.rowcount == 1)

    def get_loop_iteration(self, iteration_id: str) -> LoopIteration:
        check_iteration_id(iteration_id)
        li = t.loop_iterations.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.loop_iterations).where(li.iteration_id == iteration_id)
            ).first()
        if row is None:
            raise _not_found(iteration_id)
        return _iteration(row._mapping)

    def list_loop_iterations(
        self,
        model_name: str | None = None,
        *,
        statuses: Sequence[IterationStatus] | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[LoopIteration]:
        li = t.loop_iterations.c
        query = sa.select(t.loop_iterations)
        if model_name is not None:
            query = query.where(li.model_name == check_model_name(model_name))
        if statuses is not None:
            query = query.where(
                li.status.in_(enum_values(IterationStatus, statuses, "loop iteration status"))
            )
        if since_ms is not None:
            query = query.where(li.created_ms >= check_ms(since_ms, "since_ms"))
        query = query.order_by(
            li.created_ms.desc(), li.number.desc(), li.iteration_id.desc()
        ).limit(check_limit(limit))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_iteration(row._mapping) for row in rows]


def _open_clash(conn: sa.Connection, model: str) -> AlreadyExists | None:
    """``AlreadyExists`` naming the open iteration of ``model``, if it has one."""
    li = t.loop_iterations.c
    open_row = conn.execute(
        sa.select(li.iteration_id, li.number, li.status, li.owner).where(li.open_model == model)
    ).first()
    if open_row is None:
        return None
    return AlreadyExists(
        f"model {model!r} already has an open loop iteration {open_row.iteration_id!r} "
        f"(number {open_row.number}, {open_row.status}, held by {open_row.owner!r}): a model "
        "has at most one open iteration; close it (DONE or FAILED) first",
        model=model,
        open_iteration=open_row.iteration_id,
    )


def _not_found(iteration_id: str) -> NotFound:
    return NotFound(
        f"loop iteration {iteration_id!r} not found: list_loop_iterations shows a model's "
        "iterations",
        id=iteration_id,
    )


def _check_owner(owner: object) -> str:
    return check_str(owner, "loop iteration owner", _OWNER_LENGTH, allow_empty=False)


# -- JSON ------------------------------------------------------------------------------------------
def _json_text(value: object, name: str, iteration_id: object) -> str:
    """``value`` (the ``trigger`` or ``record`` of an iteration) as JSON text."""
    what = f"{name} of loop iteration {iteration_id!r}"
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"invalid {what} {value!r}: must be a dict (JSON object) with string keys"
        )
    try:
        problem = _json_problem(dict(value), name)
    except RecursionError:
        problem = f"{name} is nested too deeply or contains itself"
    if problem is not None:
        raise InvalidArgument(f"invalid {what}: {problem}")
    return json.dumps(dict(value), allow_nan=False)


def _json_problem(value: object, path: str) -> str | None:
    """What keeps ``value`` from round-tripping through JSON (naming where), or None."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return (
            f"{path} is {value!r}: NaN and infinity are not stored; record None or a string "
            "such as 'nan' instead"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has the key {key!r} ({type(key).__name__}): keys must be strings"
            problem = _json_problem(item, f"{path}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None
    return (
        f"{path} is {value!r} ({type(value).__name__}): must hold only JSON values (str, int, "
        "float, bool, None, lists and dicts with string keys)"
    )


# -- rows and entities -----------------------------------------------------------------------------
def _iteration_row(it: LoopIteration) -> dict[str, Any]:
    if not isinstance(it, LoopIteration):
        raise InvalidArgument(f"invalid loop iteration {it!r}: must be a LoopIteration")
    iteration_id = check_iteration_id(it.iteration_id)
    status = enum_member(IterationStatus, it.status, "loop iteration status")
    if not status.open:
        raise InvalidArgument(
            f"invalid status {status.value!r} of new loop iteration {iteration_id!r}: a new "
            "iteration must be open (RUNNING or WAITING)"
        )
    return {
        "iteration_id": iteration_id,
        "model_name": check_model_name(it.model_name),
        "status": status.value,
        "stage": enum_member(Stage, it.stage, "loop iteration stage").value,
        "outcome": enum_member(Outcome, it.outcome, "loop iteration outcome").value,
        "trigger": _json_text(it.trigger, "trigger", iteration_id),
        "record": _json_text(it.record, "record", iteration_id),
        "owner": _check_owner(it.owner),
        "heartbeat_ms": check_ms(it.heartbeat_ms, "heartbeat_ms"),
        "created_ms": check_ms(it.created_ms, "created_ms"),
        "updated_ms": check_ms(it.updated_ms, "updated_ms"),
    }


def _iteration(row: Mapping[Any, Any]) -> LoopIteration:
    return LoopIteration(
        iteration_id=row["iteration_id"],
        model_name=row["model_name"],
        number=int(row["number"]),
        status=IterationStatus(row["status"]),
        stage=Stage(row["stage"]),
        outcome=Outcome(row["outcome"]),
        trigger=json.loads(row["trigger"]),
        record=json.loads(row["record"]),
        owner=row["owner"],
        heartbeat_ms=int(row["heartbeat_ms"]),
        created_ms=int(row["created_ms"]),
        updated_ms=int(row["updated_ms"]),
    )
