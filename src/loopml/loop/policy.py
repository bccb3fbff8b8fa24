"""The loop policy of one registered model: what triggers retraining, on which data, with
which pipeline, behind which gates, within which limits. Written in Python or YAML:

.. code-block:: yaml

    model: fraud
    alias: champion
    metric: accuracy
    triggers:
      - {kind: drift, metric: drift.share, op: ">=", threshold: 0.3}
      - {kind: performance, metric: performance.accuracy, op: "<", threshold: 0.85}
      - {kind: alert, rule: drift}
      - {kind: schedule, cron: "0 3 * * 0"}
      - {kind: data, dataset: fraud-labelled}
    data: {source: feedback, window_rows: 5000, holdout: 0.3, target: label}
    retrain: {pipeline: "loopml.loop.retrain:refit"}
    gates: [{kind: beats, alias: champion, metric: accuracy, by: 0.0}]
    limits: {max_per_day: 4, cooldown_s: 3600, budget_s: 7200}
    rollback: {auto: true, window_rows: 300, margin: 0.02}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument
from loopml.registry.gates import BeatsAlias, Gate, gate_from_dict

TRIGGER_KINDS = ("drift", "metric", "performance", "alert", "schedule", "data")
OPS = (">", ">=", "<", "<=")
SOURCES = ("feedback", "dataset")


@dataclass(frozen=True, slots=True)
class TriggerRule:
    """When to retrain.

    ``drift``, ``metric`` and ``performance``: a value of the monitor's latest window
    (``metric``, e.g. ``drift.share`` or ``performance.accuracy``) compared with ``threshold``
    by ``op``, for ``windows`` windows in a row. ``alert``: an alert of rule ``rule`` (any rule
    when empty) fired for the model. ``schedule``: a cron expression (UTC). ``data``: a new
    version of dataset ``dataset``.
    """

    kind: str
    metric: str = ""
    op: str = ">="
    threshold: float = math.nan
    windows: int = 1
    rule: str = ""
    cron: str = ""
    dataset: str = ""

    def describe(self) -> str:
        if self.kind in ("drift", "metric", "performance"):
            times = "" if self.windows == 1 else f" for {self.windows} windows"
            return f"{self.metric} {self.op} {self.threshold:g}{times}"
        if self.kind == "alert":
            return f"alert {self.rule or '(any rule)'}"
        if self.kind == "schedule":
            return f"schedule {self.cron}"
        return f"new version of dataset {self.dataset}"


@dataclass(frozen=True, slots=True)
class DataSpec:
    """What a retrain learns from. ``feedback``: the newest ``window_rows`` labelled rows of the
    prediction log (inputs joined with the ground truth sent to ``/feedback``); ``dataset``: the
    latest version of ``dataset``. The last ``holdout`` share of the rows (by time) is kept out
    of training: both models are evaluated on it. ``target`` names the label column."""

    source: str = "feedback"
    window_rows: int = 2000
    holdout: float = 0.3
    target: str = "target"
    dataset: str = ""
    min_rows: int = 50


@dataclass(frozen=True, slots=True)
class RetrainSpec:
    """The pipeline that retrains (an import reference) and the step whose tracking run logs
    the new model as artifact ``model``. The pipeline receives ``model``, ``version`` (the
    champion), ``training`` (``name@version`` of the training dataset), ``target`` and
    ``params``."""

    pipeline: str = "loopml.loop.retrain:refit"
    step: str = "train"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Limits:
    """At most ``max_per_day`` iterations in 24 hours, ``cooldown_s`` between two, and at most
    ``budget_s`` seconds of retraining in 24 hours (0: no budget)."""

    max_per_day: int = 4
    cooldown_s: float = 3600.0
    budget_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ShadowSpec:
    """Run the challenger in shadow (under alias ``alias``; serve with ``--shadow
    MODEL@ALIAS``) for ``duration_s`` and compare both on the labelled live rows; 0: no shadow.
    Until ``min_rows`` labelled requests were answered by both, the period goes on, up to
    ``max_wait_s`` (0: four times ``duration_s``); then the challenger is rejected for lack of
    evidence."""

    duration_s: float = 0.0
    alias: str = "challenger"
    min_rows: int = 50
    max_wait_s: float = 0.0

    @property
    def deadline_s(self) -> float:
        return self.max_wait_s or 4 * self.duration_s


@dataclass(frozen=True, slots=True)
class RollbackSpec:
    """After a promotion, compare the new champion's live ``metric`` on its first
    ``window_rows`` labelled rows with the old champion's on its last ones; roll back when it
    is worse by more than ``margin``."""

    auto: bool = True
    window_rows: int = 200
    margin: float = 0.02


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    """The whole policy of one model; see the module docstring for the YAML form."""

    model: str
    alias: str = "champion"
    metric: str = "accuracy"
    higher_is_better: bool = True
    triggers: tuple[TriggerRule, ...] = (
        TriggerRule(kind="drift", metric="drift.share", op=">=", threshold=0.5),
    )
    data: DataSpec = DataSpec()
    retrain: RetrainSpec = RetrainSpec()
    gates: tuple[Gate, ...] = ()
    limits: Limits = Limits()
    shadow: ShadowSpec = ShadowSpec()
    rollback: RollbackSpec = RollbackSpec()
    monitor_window_rows: int = 500

    def __post_init__(self) -> None:
        check_policy(self)

    def promotion_gates(self) -> tuple[Gate, ...]:
        """The gates a challenger must pass (default: beat the champion on the holdout)."""
        if self.gates:
            return self.gates
        return (BeatsAlias(self.alias, self.metric, higher_is_better=self.higher_is_better),)

    def to_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("gates", "triggers")
        }
        for key in ("data", "retrain", "limits", "shadow", "rollback"):
            out[key] = dataclasses.asdict(out[key])
        out["retrain"]["params"] = dict(self.retrain.params)
        out["triggers"] = [
            {k: v for k, v in dataclasses.asdict(t).items() if v not in ("", None)}
            for t in self.triggers
        ]
        out["gates"] = [g.to_dict() for g in self.gates]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopPolicy:
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"a loop policy is a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown loop policy keys {unknown}: valid keys are {sorted(known)}"
            )
        values: dict[str, Any] = dict(data)
        values["triggers"] = tuple(
            _part(TriggerRule, t, "triggers[]") for t in data.get("triggers", ())
        )
        if "triggers" not in data:
            del values["triggers"]
        parts = {
            "data": DataSpec,
            "retrain": RetrainSpec,
            "limits": Limits,
            "shadow": ShadowSpec,
            "rollback": RollbackSpec,
        }
        for key, kind in parts.items():
            if key in data:
                values[key] = _part(kind, data[key], key)
        if "gates" in data:
            values["gates"] = tuple(gate_from_dict(g) for g in data["gates"] or ())
        return cls(**values)

    @classmethod
    def from_yaml(cls, text: str) -> LoopPolicy:
        import yaml

        return cls.from_dict(yaml.safe_load(text) or {})

    @classmethod
    def from_file(cls, path: str | Path) -> LoopPolicy:
        file = Path(path)
        if not file.is_file():
            raise InvalidArgument(f"loop policy file {str(file)!r} does not exist")
        return cls.from_yaml(file.read_text())


def _part(kind: type[Any], value: Any, where: str) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"loop policy {where} must be a mapping, got {value!r}")
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidArgument(
            f"unknown keys {unknown} in loop policy {where}: valid keys are {sorted(known)}"
        )
    return kind(**value)


def check_policy(policy: LoopPolicy) -> None:
    """InvalidArgument naming the first bad field of ``policy``."""
    from loopml.core.registry import check_alias, check_model_name

    check_model_name(policy.model)
    check_alias(policy.alias)
    if not policy.triggers:
        raise InvalidArgument(f"loop policy of {policy.model!r} has no trigger: add at least one")
    for rule in policy.triggers:
        _check_trigger(rule)
    data = policy.data
    if data.source not in SOURCES:
        raise InvalidArgument(
            f"invalid data source {data.source!r}: choose one of {', '.join(SOURCES)}"
        )
    if data.source == "dataset" and not data.dataset:
        raise InvalidArgument("data source 'dataset' needs data.dataset (a dataset name)")
    if not 0 < data.holdout < 1:
        raise InvalidArgument(f"invalid data.holdout {data.holdout!r}: must be between 0 and 1")
    for name, value, low in (
        ("data.window_rows", data.window_rows, 2),
        ("data.min_rows", data.min_rows, 2),
        ("limits.max_per_day", policy.limits.max_per_day, 1),
        ("rollback.window_rows", policy.rollback.window_rows, 1),
        ("monitor_window_rows", policy.monitor_window_rows, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidArgument(f"invalid {name} {value!r}: must be a whole number >= {low}")
    for name, number in (
        ("limits.cooldown_s", policy.limits.cooldown_s),
        ("limits.budget_s", policy.limits.budget_s),
        ("shadow.duration_s", policy.shadow.duration_s),
        ("shadow.max_wait_s", policy.shadow.max_wait_s),
        ("rollback.margin", policy.rollback.margin),
    ):
        if not isinstance(number, (int, float)) or not math.isfinite(number) or number < 0:
            raise InvalidArgument(f"invalid {name} {number!r}: must be a number >= 0")
    if not isinstance(policy.retrain.pipeline, str) or ":" not in policy.retrain.pipeline:
        raise InvalidArgument(
            f"invalid retrain.pipeline {policy.retrain.pipeline!r}: give module:attribute or "
            "path/file.py:attribute"
        )


def _check_trigger(rule: TriggerRule) -> None:
    if rule.kind not in TRIGGER_KINDS:
        raise InvalidArgument(
            f"invalid trigger kind {rule.kind!r}: choose one of {', '.join(TRIGGER_KINDS)}"
        )
    if rule.kind in ("drift", "metric", "performance"):
        if not rule.metric:
            raise InvalidArgument(f"a {rule.kind} trigger needs metric (e.g. drift.share)")
        if rule.op not in OPS:
            raise InvalidArgument(f"invalid trigger op {rule.op!r}: choose one of {OPS}")
        if not isinstance(rule.threshold, (int, float)) or not math.isfinite(rule.threshold):
            raise InvalidArgument(
                f"a {rule.kind} trigger on {rule.metric!r} needs a finite threshold, got "
                f"{rule.threshold!r}"
            )
        if isinstance(rule.windows, bool) or not isinstance(rule.windows, int) or rule.windows < 1:
            raise InvalidArgument(f"invalid trigger windows {rule.windows!r}: must be >= 1")
    elif rule.kind == "schedule":
        from loopml.pipelines.schedules import check_cron

        check_cron(rule.cron)
    elif rule.kind == "data" and not rule.dataset:
        raise InvalidArgument("a data trigger needs dataset (the dataset's name)")
