"""Alert entities: an alert a monitoring rule fired, and the per-rule state between windows.

Both are plain values the store keeps; the rules, channels and firing logic live in
:mod:`loopml.monitoring.alerts`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopml.core.prediction_log import check_ms, check_text
from loopml.errors import InvalidArgument

OPS = (">", ">=", "<", "<=", "==")
SEVERITIES = ("warning", "critical")
DELIVERED = "ok"  # the delivery status of a channel that took the alert
MAX_METRIC_LENGTH = 500
_ALERT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing of a rule for a model, as delivered and stored.

    ``deliveries`` maps each channel name to ``"ok"`` or the error that channel raised.
    ``fired_ms`` is the wall-clock time of firing; ``window_end_ms`` the end of the data
    window whose metrics breached.
    """

    alert_id: str
    model_name: str
    rule: str
    metric: str
    value: float
    threshold: float
    op: str
    severity: str
    fired_ms: int
    window_end_ms: int
    message: str
    deliveries: Mapping[str, str] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        """True when every channel took the alert."""
        return all(status == DELIVERED for status in self.deliveries.values())


@dataclass(frozen=True, slots=True)
class AlertState:
    """What a rule remembers about a model between evaluations (it survives restarts).

    ``breaches`` counts consecutive breached windows up to ``last_window_ms``;
    ``last_fired_window_ms`` is the window end of the rule's last alert (None: never fired).
    """

    model_name: str
    rule: str
    breaches: int
    last_window_ms: int
    last_fired_window_ms: int | None
    updated_ms: int


def check_op(op: object) -> str:
    if isinstance(op, str) and op in OPS:
        return op
    raise InvalidArgument(
        f"invalid comparison {op!r}: must be one of {', '.join(repr(o) for o in OPS)}"
    )


def check_severity(severity: object) -> str:
    if isinstance(severity, str) and severity in SEVERITIES:
        return severity
    raise InvalidArgument(
        f"invalid severity {severity!r}: must be one of {', '.join(repr(s) for s in SEVERITIES)}"
    )


def check_metric(metric: object) -> str:
    """A dotted metric name such as ``drift.share``: non-empty, at most 500 characters."""
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidArgument(
            f"invalid metric name {metric!r}: must be a non-empty dotted name such as "
            "'drift.share' or 'performance.accuracy'"
        )
    if len(metric) > MAX_METRIC_LENGTH:
        raise InvalidArgument(
            f"invalid metric name {metric[:40]!r}...: {len(metric)} characters, at most "
            f"{MAX_METRIC_LENGTH} allowed"
        )
    return metric


def check_number(value: object, what: str, *, finite: bool = True) -> float:
    """A real number (not a bool or a string); NaN is refused, infinities too when ``finite``."""
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)  # type: ignore[arg-type]  # ints, floats, numpy scalars
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid {what} {value!r}: must be a number") from None
    if math.isnan(number) or (finite and math.isinf(number)):
        rule = "a finite number" if finite else "a number, not NaN"
        raise InvalidArgument(f"invalid {what} {value!r}: must be {rule}")
    return number


def check_alert(alert: Alert) -> Alert:
    """Validate every field of an alert before it is stored."""
    if not isinstance(alert, Alert):
        raise InvalidArgument(
            f"expected an Alert, got {type(alert).__name__}: alerts are built by AlertManager"
        )
    if not isinstance(alert.alert_id, str) or not _ALERT_ID_RE.fullmatch(alert.alert_id):
        raise InvalidArgument(
            f"invalid alert id {alert.alert_id!r}: must be 32 lowercase hex characters"
        )
    check_text(alert.model_name, "model name")
    check_text(alert.rule, "rule name")
    check_metric(alert.metric)
    check_number(alert.value, "alert value", finite=False)
    check_number(alert.threshold, "alert threshold")
    check_op(alert.op)
    check_severity(alert.severity)
    check_ms(alert.fired_ms, "fired_ms")
    check_ms(alert.window_end_ms, "window_end_ms")
    if not isinstance(alert.message, str):
        raise InvalidArgument(f"invalid alert message {alert.message!r}: must be a string")
    deliveries = alert.deliveries
    if not isinstance(deliveries, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in deliveries.items()
    ):
        raise InvalidArgument(
            f"invalid alert deliveries {deliveries!r}: must map channel names to 'ok' or an "
            "error message"
        )
    return alert


def check_alert_state(state: AlertState) -> AlertState:
    if not isinstance(state, AlertState):
        raise InvalidArgument(f"expected an AlertState, got {type(state).__name__}")
    check_text(state.model_name, "model name")
    check_text(state.rule, "rule name")
    if (
        isinstance(state.breaches, bool)
        or not isinstance(state.breaches, int)
        or state.breaches < 0
    ):
        raise InvalidArgument(f"invalid breach count {state.breaches!r}: must be an integer >= 0")
    check_ms(state.last_window_ms, "last_window_ms")
    if state.last_fired_window_ms is not None:
        check_ms(state.last_fired_window_ms, "last_fired_window_ms")
    check_ms(state.updated_ms, "updated_ms")
    return state


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidArgument(f"invalid limit {limit!r}: must be an integer from 1 to 10000")
    return limit
