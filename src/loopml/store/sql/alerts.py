"""The alerts half of ``SqlStore``: fired alerts and the per-rule state between windows."""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core.alerts import (
    Alert,
    AlertState,
    check_alert,
    check_alert_state,
    check_limit,
)
from loopml.core.prediction_log import check_ms, check_text
from loopml.errors import AlreadyExists
from loopml.store.sql import schema as t
from loopml.store.sql.upsert import upsert


class AlertsMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def add_alert(self, alert: Alert) -> None:
        self.record_alert_evaluation((), (alert,))

    def list_alerts(
        self,
        model_name: str | None = None,
        *,
        rule: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        a = t.alerts.c
        query = sa.select(t.alerts)
        if model_name is not None:
            query = query.where(a.model_name == check_text(model_name, "model name"))
        if rule is not None:
            query = query.where(a.rule == check_text(rule, "rule name"))
        if since_ms is not None:
            query = query.where(a.fired_ms >= check_ms(since_ms, "since_ms"))
        query = query.order_by(a.fired_ms.desc(), a.alert_id.desc()).limit(check_limit(limit))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_alert(row) for row in rows]

    def get_alert_states(self, model_name: str) -> dict[str, AlertState]:
        s = t.alert_states.c
        query = sa.select(t.alert_states).where(
            s.model_name == check_text(model_name, "model name")
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return {row.rule: _state(row) for row in rows}

    def record_alert_evaluation(
        self, states: Sequence[AlertState], alerts: Sequence[Alert] = ()
    ) -> None:
        state_rows = [_state_row(check_alert_state(s)) for s in states]
        alert_rows = [_alert_row(check_alert(a)) for a in alerts]
        if not state_rows and not alert_rows:
            return
        try:
            with self._write() as conn:
                if alert_rows:
                    conn.execute(t.alerts.insert(), alert_rows)
                if state_rows:
                    update = [c for c in state_rows[0] if c not in ("model_name", "rule")]
                    upsert(conn, t.alert_states, state_rows, ["model_name", "rule"], update)
        except sa.exc.IntegrityError:  # the alert id is the only constraint an insert can break
            ids = ", ".join(repr(row["alert_id"]) for row in alert_rows)
            raise AlreadyExists(
                f"an alert with one of the ids {ids} is already stored: alert ids are unique",
                alert_ids=[row["alert_id"] for row in alert_rows],
            ) from None


def _alert_row(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "model_name": a.model_name,
        "rule": a.rule,
        "metric": a.metric,
        "value": float(a.value),
        "threshold": float(a.threshold),
        "op": a.op,
        "severity": a.severity,
        "fired_ms": int(a.fired_ms),
        "window_end_ms": int(a.window_end_ms),
        "message": a.message,
        "deliveries": json.dumps(dict(a.deliveries), sort_keys=True),
    }


def _alert(row: sa.Row[Any]) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        model_name=row.model_name,
        rule=row.rule,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        op=row.op,
        severity=row.severity,
        fired_ms=row.fired_ms,
        window_end_ms=row.window_end_ms,
        message=row.message,
        deliveries=json.loads(row.deliveries),
    )


def _state_row(s: AlertState) -> dict[str, Any]:
    return {
        "model_name": s.model_name,
        "rule": s.rule,
        "breaches": s.breaches,
        "last_window_ms": int(s.last_window_ms),
        "last_fired_window_ms": (
            None if s.last_fired_window_ms is None else int(s.last_fired_window_ms)
        ),
        "updated_ms": int(s.updated_ms),
    }


def _state(row: sa.Row[Any]) -> AlertState:
    return AlertState(
        model_name=row.model_name,
        rule=row.rule,
        breaches=row.breaches,
        last_window_ms=row.last_window_ms,
        last_fired_window_ms=row.last_fired_window_ms,
        updated_ms=row.updated_ms,
    )
