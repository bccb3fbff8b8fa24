"""The schedules half of ``SqlStore``: triggers and their firings.

A firing's primary key ``(trigger, key)`` is what lets many schedulers race for the same cron
slot, dataset version or alert: the database inserts one row and ignores the others. Taking
over a firing whose owner stopped beating is a single compare-and-set UPDATE.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core import entities
from loopml.core.alerts import check_limit
from loopml.core.pipelines import check_pipeline_run_id
from loopml.core.prediction_log import check_ms, check_takeover_times
from loopml.core.schedules import (
    Firing,
    FiringStatus,
    Trigger,
    TriggerKind,
    check_trigger_name,
)
from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.store.sql import schema as t
from loopml.store.sql.pipelines import check_flag, check_str, enum_member, enum_values, json_object
from loopml.store.sql.upsert import insert_for, upsert

_SHOWN_NAMES = 20  # a NotFound lists at most this many of the triggers that exist
_LIVE = (FiringStatus.CLAIMED.value, FiringStatus.RUNNING.value)


class SchedulesMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    # -- triggers ----------------------------------------------------------------------------
    def put_trigger(self, trigger: Trigger) -> Trigger:
        row = _trigger_row(trigger)
        if row["created_ms"] == 0:
            row["created_ms"] = entities.now_ms()
        update = [c for c in row if c not in ("name", "created_ms")]  # created_ms is kept
        with self._write() as conn:
            upsert(conn, t.triggers, [row], ["name"], update)
            stored = conn.execute(
                sa.select(t.triggers).where(t.triggers.c.name == row["name"])
            ).one()
        return _trigger(stored)

    def get_trigger(self, name: str) -> Trigger:
        check_trigger_name(name)
        tr = t.triggers.c
        with self._read() as conn:
            row = conn.execute(sa.select(t.triggers).where(tr.name == name)).first()
            if row is not None:
                return _trigger(row)
            known = list(
                conn.execute(sa.select(tr.name).order_by(tr.name).limit(_SHOWN_NAMES + 1)).scalars()
            )
        if not known:
            raise NotFound(
                f"trigger {name!r} not found: there are no triggers yet (put_trigger adds one)",
                name=name,
            )
        shown = ", ".join(repr(n) for n in known[:_SHOWN_NAMES])
        more = ", ..." if len(known) > _SHOWN_NAMES else ""
        raise NotFound(f"trigger {name!r} not found: triggers are {shown}{more}", name=name)

    def list_triggers(self) -> list[Trigger]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.triggers).order_by(t.triggers.c.name)).all()
        return [_trigger(row) for row in rows]

    def delete_trigger(self, name: str) -> None:
        check_trigger_name(name)
        with self._write() as conn:
            # Firings go first and explicitly: SQLite cascades only with its FK pragma on.
            conn.execute(t.firings.delete().where(t.firings.c.trigger == name))
            result = conn.execute(t.triggers.delete().where(t.triggers.c.name == name))
            if result.rowcount == 0:
                raise NotFound(f"trigger {name!r} not found: nothing to delete", name=name)

    # -- firings -----------------------------------------------------------------------------
    def claim_firing(self, firing: Firing) -> bool:
        row = _firing_row(firing)
        if row["claimed_ms"] == 0:
            row["claimed_ms"] = entities.now_ms()
        if row["heartbeat_ms"] == 0:
            row["heartbeat_ms"] = row["claimed_ms"]
        try:
            with self._write() as conn:
                if not _trigger_exists(conn, row["trigger"]):
                    raise _trigger_not_found(row["trigger"])
                # ON CONFLICT DO NOTHING rather than catching the duplicate key: a losing
                # claim is an everyday event, not an error (PostgreSQL would log each one).
                # RETURNING says whether the row went in (rowcount is not reliable for INSERT).
                insert = insert_for(conn, t.firings).values(**row)
                inserted = conn.execute(
                    insert.on_conflict_do_nothing(index_elements=["trigger", "key"]).returning(
                        t.firings.c.key
                    )
                ).first()
                return inserted is not None
        except sa.exc.IntegrityError:  # the trigger was deleted since the check above
            raise _trigger_not_found(row["trigger"]) from None

    def take_over_firing(
        self, trigger: str, key: str, *, owner: str, stale_before_ms: int, now_ms: int
    ) -> bool:
        check_trigger_name(trigger)
        _check_key(key)
        check_str(owner, "firing owner", 250, allow_empty=False)
        stale, now = check_takeover_times(stale_before_ms, now_ms)
        f = t.firings.c
        with self._write() as conn:
            result = conn.execute(
                t.firings.update()
                .where(
                    f.trigger == trigger,
                    f.key == key,
                    f.status.in_(_LIVE),
                    f.heartbeat_ms < stale,
                )
                .values(
                    owner=owner,
                    status=FiringStatus.CLAIMED.value,
                    claimed_ms=now,
                    heartbeat_ms=now,
                )
            )
            return bool(result.rowcount == 1)

    def update_firing(
        self,
        trigger: str,
        key: str,
        *,
        owner: str,
        status: FiringStatus | None = None,
        heartbeat_ms: int | None = None,
        pipeline_run_id: str | None = None,
        error: str | None = None,
    ) -> Firing:
        check_trigger_name(trigger)
        _check_key(key)
        check_str(owner, "firing owner", 250, allow_empty=False)
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = enum_member(FiringStatus, status, "firing status").value
        if heartbeat_ms is not None:
            values["heartbeat_ms"] = check_ms(heartbeat_ms, "heartbeat_ms")
        if pipeline_run_id is not None:
            values["pipeline_run_id"] = _run_id(pipeline_run_id)
        if error is not None:
            values["error"] = check_str(error, "error")
        f = t.firings.c
        with self._write() as conn:
            if values:
                conn.execute(
                    t.firings.update()
                    .where(f.trigger == trigger, f.key == key, f.owner == owner)
                    .values(**values)
                )
            row = conn.execute(
                sa.select(t.firings).where(f.trigger == trigger, f.key == key)
            ).first()
        if row is None:
            raise NotFound(
                f"firing {key!r} of trigger {trigger!r} not found: claim it first (claim_firing)",
                trigger=trigger,
                key=key,
            )
        if row.owner != owner:
            raise InvalidState(
                f"firing {key!r} of trigger {trigger!r} is held by {row.owner!r}, not "
                f"{owner!r}: another scheduler took it over",
                trigger=trigger,
                key=key,
                owner=row.owner,
            )
        return _firing(row)

    def list_firings(
        self,
        trigger: str | None = None,
        *,
        statuses: Sequence[FiringStatus] | None = None,
        limit: int = 100,
    ) -> list[Firing]:
        f = t.firings.c
        query = sa.select(t.firings)
        if trigger is not None:
            query = query.where(f.trigger == check_trigger_name(trigger))
        if statuses is not None:
            query = query.where(f.status.in_(enum_values(FiringStatus, statuses, "firing status")))
        query = query.order_by(f.due_ms.desc(), f.claimed_ms.desc(), f.trigger, f.key.desc()).limit(
            check_limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_firing(row) for row in rows]


def _trigger_exists(conn: sa.Connection, name: str) -> bool:
    found = conn.execute(sa.select(t.triggers.c.name).where(t.triggers.c.name == name)).first()
    return found is not None


def _trigger_not_found(name: str) -> NotFound:
    return NotFound(
        f"trigger {name!r} not found: put the trigger before claiming its firings", name=name
    )


def _check_key(key: object) -> str:
    return check_str(key, "firing key", 500, allow_empty=False)


def _run_id(value: object) -> str:
    return "" if value == "" else check_pipeline_run_id(value)


def _trigger_row(tr: Trigger) -> dict[str, Any]:
    if not isinstance(tr, Trigger):
        raise InvalidArgument(f"invalid trigger {tr!r}: must be a Trigger")
    name = check_trigger_name(tr.name)
    return {
        "name": name,
        "pipeline": check_str(tr.pipeline, f"pipeline of trigger {name!r}", allow_empty=False),
        "kind": enum_member(TriggerKind, tr.kind, f"kind of trigger {name!r}").value,
        "spec": check_str(tr.spec, f"spec of trigger {name!r}", allow_empty=False),
        "params": json_object(tr.params, f"params of trigger {name!r}"),
        "enabled": check_flag(tr.enabled, f"enabled of trigger {name!r}"),
        "created_ms": check_ms(tr.created_ms, "created_ms"),
        "description": check_str(tr.description, f"description of trigger {name!r}"),
    }


def _trigger(row: sa.Row[Any]) -> Trigger:
    return Trigger(
        name=row.name,
        pipeline=row.pipeline,
        kind=TriggerKind(row.kind),
        spec=row.spec,
        params=json.loads(row.params),
        enabled=bool(row.enabled),
        created_ms=int(row.created_ms),
        description=row.description,
    )


def _firing_row(fi: Firing) -> dict[str, Any]:
    if not isinstance(fi, Firing):
        raise InvalidArgument(f"invalid firing {fi!r}: must be a Firing")
    return {
        "trigger": check_trigger_name(fi.trigger),
        "key": _check_key(fi.key),
        "due_ms": check_ms(fi.due_ms, "due_ms"),
        "owner": check_str(fi.owner, "firing owner", 250, allow_empty=False),
        "status": enum_member(FiringStatus, fi.status, "firing status").value,
        "claimed_ms": check_ms(fi.claimed_ms, "claimed_ms"),
        "heartbeat_ms": check_ms(fi.heartbeat_ms, "heartbeat_ms"),
        "pipeline_run_id": _run_id(fi.pipeline_run_id),
        "error": check_str(fi.error, "error"),
    }


def _firing(row: sa.Row[Any]) -> Firing:
    return Firing(
        trigger=row.trigger,
        key=row.key,
        due_ms=int(row.due_ms),
        owner=row.owner,
        status=FiringStatus(row.status),
        claimed_ms=int(row.claimed_ms),
        heartbeat_ms=int(row.heartbeat_ms),
        pipeline_run_id=row.pipeline_run_id,
        error=row.error,
    )
