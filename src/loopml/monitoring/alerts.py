"""Alert rules over monitoring metrics, their channels, and the manager that fires them.

A rule watches one dotted metric the monitor produces (``drift.share``,
``drift.column.<name>.statistic``, ``drift.dataset`` as 0/1, ``quality.missing_rate.<col>``,
``performance.accuracy``, ...). :meth:`AlertManager.evaluate` is called once per window with
that window's metric values. A rule fires when its metric breached the threshold in
``windows`` consecutive evaluations and at least ``cooldown_s`` passed since it last fired for
that model; while the breach goes on it fires again once per cooldown, and a window that does
not breach starts the count again. Times are window times (``window_end_ms``), so replaying
past windows behaves as live monitoring did. Each rule's state (consecutive breaches, last
evaluated window, last fired window) is kept in the store, one row per model and rule, and
saved with the alerts in one transaction: a restarted monitor carries on where it stopped, and
evaluating a window that is not newer than the last one evaluated does nothing for that rule.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.core.alerts import (
    DELIVERED,
    Alert,
    AlertState,
    check_metric,
    check_number,
    check_op,
    check_severity,
)
from loopml.core.entities import now_ms
from loopml.core.prediction_log import check_ms, check_text
from loopml.errors import InvalidArgument, NotFound
from loopml.monitoring._channels import (
    Channel,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    alert_payload,
    email_message,
    slack_payload,
)

if TYPE_CHECKING:
    from loopml.store.base import MetadataStore

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertManager",
    "AlertRule",
    "Channel",
    "EmailChannel",
    "LogChannel",
    "SlackChannel",
    "WebhookChannel",
    "alert_payload",
    "email_message",
    "load_rules",
    "slack_payload",
]

Op = Literal[">", ">=", "<", "<=", "=="]
Severity = Literal["warning", "critical"]

logger = logging.getLogger("loopml.alerts")

_RULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMPARE = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
}


class AlertRule:
    """Fire when ``metric op threshold`` holds for ``windows`` consecutive windows.

    Parameters are stored as given; :meth:`validate` (called by :class:`AlertManager` and
    :func:`load_rules`) checks them. ``==`` compares exactly: use it for 0/1 metrics such as
    ``drift.dataset``.
    """

    def __init__(
        self,
        name: str,
        metric: str,
        *,
        op: Op = ">",
        threshold: float,
        windows: int = 1,
        cooldown_s: float = 3600,
        severity: Severity = "warning",
        channels: Sequence[str] = ("log",),
    ) -> None:
        self.name = name
        self.metric = metric
        self.op = op
        self.threshold = threshold
        self.windows = windows
        self.cooldown_s = cooldown_s
        self.severity = severity
        self.channels = channels

    def get_params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "windows": self.windows,
            "cooldown_s": self.cooldown_s,
            "severity": self.severity,
            "channels": tuple(self.channels),
        }

    def validate(self) -> AlertRule:
        """Check every parameter; InvalidArgument names the bad value and the valid ones."""
        if not isinstance(self.name, str) or not _RULE_NAME_RE.match(self.name):
            raise InvalidArgument(
                f"invalid rule name {self.name!r}: 1 to 100 characters from letters, digits, "
                "'_', '-' and '.', starting with a letter or digit"
            )
        where = f"rule {self.name!r}"
        check_metric(self.metric)
        check_op(self.op)
        check_number(self.threshold, f"threshold of {where}")
        w = self.windows
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise InvalidArgument(f"invalid windows {w!r} of {where}: must be an integer >= 1")
        if check_number(self.cooldown_s, f"cooldown_s of {where}") < 0:
            raise InvalidArgument(
                f"invalid cooldown_s {self.cooldown_s!r} of {where}: must be seconds >= 0"
            )
        check_severity(self.severity)
        names = self.channels
        if (
            isinstance(names, str)
            or not isinstance(names, Sequence)
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise InvalidArgument(
                f"invalid channels {names!r} of {where}: must be a non-empty list of channel "
                "names, e.g. ['log'] or ['ops', 'log']"
            )
        return self

    def breached(self, value: float) -> bool:
        """True when ``value op threshold`` holds (NaN never breaches)."""
        return bool(_COMPARE[self.op](value, float(self.threshold)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlertRule) or type(other) is not type(self):
            return NotImplemented
        return self.get_params() == other.get_params()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"AlertRule({args})"


@dataclass(frozen=True)
class AlertConfig:
    """Rules and the channels they name, as read by :func:`load_rules`."""

    rules: tuple[AlertRule, ...]
    channels: Mapping[str, Channel] = field(default_factory=dict)


class AlertManager:
    """Evaluates rules on each window's metrics, delivers and stores the alerts they fire.

    ``channels`` maps the names rules use to channels; ``"log"`` is a :class:`LogChannel`
    unless given. A channel that fails is recorded in the alert's ``deliveries`` with its
    error; the other channels still get the alert and nothing is raised.
    """

    def __init__(
        self,
        store: MetadataStore,
        rules: Iterable[AlertRule],
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.store = store
        self.rules = tuple(rules)
        self.channels: dict[str, Channel] = {"log": LogChannel(), **(channels or {})}
        seen: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, AlertRule):
                raise InvalidArgument(
                    f"expected AlertRule objects, got {type(rule).__name__}: build rules with "
                    "AlertRule(name, metric, threshold=...)"
                )
            rule.validate()
            if rule.name in seen:
                raise InvalidArgument(f"two rules are named {rule.name!r}: rule names are unique")
            seen.add(rule.name)
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                raise InvalidArgument(
                    f"rule {rule.name!r} names unknown channels {unknown!r}: defined channels "
                    f"are {sorted(self.channels)!r}"
                )
        for name, channel in self.channels.items():
            if not callable(getattr(channel, "send", None)):
                raise InvalidArgument(
                    f"channel {name!r} is a {type(channel).__name__}, which has no send(alert) "
                    "method: use WebhookChannel, SlackChannel, EmailChannel or LogChannel"
                )

    @classmethod
    def from_file(cls, store: MetadataStore, path: str | Path) -> AlertManager:
        """A manager with the rules and channels of a YAML or JSON file (:func:`load_rules`)."""
        config = load_rules(path)
        return cls(store, config.rules, config.channels)

    def evaluate(
        self, model_name: str, values: Mapping[str, float], *, window_end_ms: int
    ) -> list[Alert]:
        """Apply every rule to one window's metric values; return the alerts that fired.

        Rules whose metric is absent from ``values`` or NaN are skipped (their state is kept).
        """
        model = check_text(model_name, "model name")
        end = check_ms(window_end_ms, "window_end_ms")
        if not isinstance(values, Mapping):
            raise InvalidArgument(
                f"invalid metric values {values!r}: must map metric names to numbers"
            )
        previous = self.store.get_alert_states(model)
        now = now_ms()
        states: list[AlertState] = []
        fired: list[Alert] = []
        for rule in self.rules:
            if rule.metric not in values:
                continue
            value = _metric_value(rule.metric, values[rule.metric])
            before = previous.get(rule.name)
            if math.isnan(value) or (before is not None and end <= before.last_window_ms):
                continue
            breached = rule.breached(value)
            breaches = (before.breaches if before else 0) + 1 if breached else 0
            last_fired = before.last_fired_window_ms if before else None
            cooled = last_fired is None or end - last_fired >= float(rule.cooldown_s) * 1000
            if breached and breaches >= rule.windows and cooled:
                fired.append(self._fire(rule, model, value, end, now))
                last_fired = end
            states.append(AlertState(model, rule.name, breaches, end, last_fired, now))
        self.store.record_alert_evaluation(states, fired)
        return fired

    def _fire(self, rule: AlertRule, model: str, value: float, end: int, now: int) -> Alert:
        span = f" for {rule.windows} consecutive windows" if rule.windows > 1 else ""
        alert = Alert(
            alert_id=uuid.uuid4().hex,
            model_name=model,
            rule=rule.name,
            metric=rule.metric,
            value=value,
            threshold=float(rule.threshold),
            op=rule.op,
            severity=rule.severity,
            fired_ms=now,
            window_end_ms=end,
            message=(
                f"{model}: {rule.metric} = {value:.6g}, {rule.op} {float(rule.threshold):.6g}"
                f"{span} (rule {rule.name!r}, {rule.severity})"
            ),
        )
        deliveries: dict[str, str] = {}
        for name in dict.fromkeys(rule.channels):
            try:
                self.channels[name].send(alert)
            except Exception as exc:  # a broken channel must not stop the others
                deliveries[name] = f"{type(exc).__name__}: {exc}"[:1000]
                logger.warning("alert %s not delivered to %r: %s", alert.alert_id, name, exc)
            else:
                deliveries[name] = DELIVERED
        return replace(alert, deliveries=deliveries)


def _metric_value(metric: str, value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return float(value)  # type: ignore[arg-type]  # ints, floats, numpy scalars
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"invalid value {value!r} for metric {metric!r}: must be a number (or a bool)"
        ) from None


# -- configuration files -----------------------------------------------------------------------

_RULE_KEYS = ("name", "metric", "op", "threshold", "windows", "cooldown_s", "severity", "channels")
_CHANNEL_KEYS: dict[str, tuple[type[Any], tuple[str, ...], tuple[str, ...]]] = {
    # type -> (class, required keys, optional keys)
    "webhook": (WebhookChannel, ("url",), ("headers", "timeout_s")),
    "slack": (SlackChannel, ("webhook_url",), ("timeout_s",)),
    "email": (
        EmailChannel,
        ("host", "port", "sender", "recipients"),
        ("username", "password", "starttls", "timeout_s"),
    ),
    "log": (LogChannel, (), ("logger",)),
}


def load_rules(path: str | Path) -> AlertConfig:
    """Read rules and channels from a YAML (``.yaml``/``.yml``) or JSON (``.json``) file.

    The file holds ``rules:`` (a list of :class:`AlertRule` parameters) and optionally
    ``channels:`` (name -> ``{type: webhook|slack|email|log, ...}`` with that channel's
    parameters). ``${NAME}`` in a channel's text is replaced by the environment variable NAME,
    so secrets stay out of the file.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise InvalidArgument(
            f"cannot read alert rules from {str(file)!r}: the file must end in .yaml, .yml or .json"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"alert rules file {str(file)!r} not found", path=str(file)) from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidArgument(
                f"alert rules file {str(file)!r} is not valid JSON: {exc}"
            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(
                f"alert rules file {str(file)!r} is not valid YAML: {exc}"
            ) from None
    return _config(data, str(file))


def _config(data: object, where: str) -> AlertConfig:
    if not isinstance(data, dict):
        raise InvalidArgument(f"{where}: expected a mapping with 'rules' and 'channels'")
    _no_unknown_keys(data, ("rules", "channels"), where)
    raw_channels = data.get("channels") or {}
    if not isinstance(raw_channels, dict):
        raise InvalidArgument(f"{where}: 'channels' must map channel names to their settings")
    channels = {
        str(name): _channel(spec, f"{where}: channel {name!r}")
        for name, spec in raw_channels.items()
    }
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidArgument(f"{where}: 'rules' must be a non-empty list of rules")
    rules = []
    for n, spec in enumerate(raw_rules):
        at = f"{where}: rules[{n}]"
        if not isinstance(spec, dict):
            raise InvalidArgument(f"{at} must be a mapping of {', '.join(_RULE_KEYS)}")
        _no_unknown_keys(spec, _RULE_KEYS, at)
        missing = [k for k in ("name", "metric", "threshold") if k not in spec]
        if missing:
            raise InvalidArgument(f"{at} lacks {', '.join(missing)}")
        params = dict(spec)
        if isinstance(params.get("channels"), list):
            params["channels"] = tuple(params["channels"])
        try:
            rules.append(AlertRule(**params).validate())
        except InvalidArgument as exc:
            raise InvalidArgument(f"{at}: {exc.message}") from None
    known = {"log", *channels}
    names = [rule.name for rule in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidArgument(f"{where}: rule names {twice!r} are used twice; names are unique")
    for rule in rules:
        unknown = [c for c in rule.channels if c not in known]
        if unknown:
            raise InvalidArgument(
                f"{where}: rule {rule.name!r} names unknown channels {unknown!r}: defined "
                f"channels are {sorted(known)!r}"
            )
    return AlertConfig(tuple(rules), channels)


def _channel(spec: object, where: str) -> Channel:
    valid_types = ", ".join(_CHANNEL_KEYS)
    if not isinstance(spec, dict) or spec.get("type") not in _CHANNEL_KEYS:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise InvalidArgument(f"{where} has type {kind!r}: must be one of {valid_types}")
    cls, required, optional = _CHANNEL_KEYS[spec["type"]]
    params = {k: _expand(v, where) for k, v in spec.items() if k != "type"}
    _no_unknown_keys(params, (*required, *optional), where)
    missing = [k for k in required if k not in params]
    if missing:
        raise InvalidArgument(f"{where} lacks {', '.join(missing)}")
    try:
        channel: Channel = cls(**params)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc.message}") from None
    return channel


def _expand(value: Any, where: str) -> Any:
    """Replace ``${NAME}`` with the environment variable NAME, in strings, lists and dicts."""
    if isinstance(value, str):

        def env(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise InvalidArgument(
                    f"{where} uses ${{{name}}} but the environment variable {name} is not set"
                )
            return os.environ[name]

        return _ENV_RE.sub(env, value)
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, where) for k, v in value.items()}
    return value


def _no_unknown_keys(spec: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    unknown = sorted(str(k) for k in spec if k not in valid)
    if unknown:
        raise InvalidArgument(
            f"{where} has unknown keys {unknown!r}: valid keys are {', '.join(valid)}"
        )
