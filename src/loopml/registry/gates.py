"""Promotion gates: small declarative checks a model version must pass to take an alias.

Each gate stores its parameters in ``__init__`` (the scikit-learn contract, so a gate can be
shown, compared and serialised) and ``check(context)`` returns a :class:`GateResult` with the
numbers it compared. Gates never raise for a failed check; they report it.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from loopml.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    passed: bool
    detail: str
    numbers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics of one model version on one evaluation dataset (from an evaluation run)."""

    dataset_digest: str
    dataset_name: str
    metrics: Mapping[str, float]
    run_id: str
    time: int


class GateContext(abc.ABC):
    """What a gate may ask about the candidate and the current alias holders."""

    name: str
    version: int
    alias: str

    @abc.abstractmethod
    def version_metrics(self, version: int) -> Mapping[str, float]:
        """Metrics recorded on the model version (copied from its training run)."""

    @abc.abstractmethod
    def evaluations(self, version: int) -> list[Evaluation]:
        """Evaluation runs of ``version``, newest first."""

    @abc.abstractmethod
    def alias_holder(self, alias: str) -> int | None:
        """The version ``alias`` points at now, or None."""

    @abc.abstractmethod
    def approvers(self, version: int, alias: str) -> list[str]: ...


class Gate(abc.ABC):
    kind: ClassVar[str]

    @abc.abstractmethod
    def check(self, ctx: GateContext) -> GateResult: ...

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Gate)
            and type(other) is type(self)
            and other.to_dict() == self.to_dict()
        )

    def __hash__(self) -> int:
        return hash(repr(self))


def _metric_of(
    ctx: GateContext, version: int, metric: str, dataset: str | None
) -> tuple[float | None, str]:
    """A version's metric: from its newest evaluation (on ``dataset`` if named), else from the
    version's own metrics. Returns (value, where it came from)."""
    for ev in ctx.evaluations(version):
        if (dataset is None or dataset in (ev.dataset_name, ev.dataset_digest)) and (
            metric in ev.metrics
        ):
            return ev.metrics[metric], f"evaluation on {ev.dataset_name or ev.dataset_digest[:12]}"
    if dataset is None and metric in (found := ctx.version_metrics(version)):
        return found[metric], "version metrics"
    return None, ""


class MetricThreshold(Gate):
    """The candidate's ``metric`` must be at least ``min`` and/or at most ``max``."""

    kind = "threshold"

    def __init__(
        self,
        metric: str,
        *,
        min: float | None = None,
        max: float | None = None,
        dataset: str | None = None,
    ) -> None:
        self.metric = metric
        self.min = min
        self.max = max
        self.dataset = dataset

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "metric": self.metric}
        for key in ("min", "max", "dataset"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def check(self, ctx: GateContext) -> GateResult:
        label = f"{self.metric} threshold"
        value, source = _metric_of(ctx, ctx.version, self.metric, self.dataset)
        if value is None or math.isnan(value):
            where = f" on dataset {self.dataset!r}" if self.dataset else ""
            return GateResult(
                label, False, f"version {ctx.version} has no {self.metric!r} metric{where}"
            )
        bounds = {"value": value, "min": self.min, "max": self.max}
        if self.min is not None and value < self.min:
            return GateResult(
                label,
                False,
                f"{self.metric} = {value:.6g} is below the minimum {self.min:g}",
                bounds,
            )
        if self.max is not None and value > self.max:
            return GateResult(
                label,
                False,
                f"{self.metric} = {value:.6g} is above the maximum {self.max:g}",
                bounds,
            )
        return GateResult(label, True, f"{self.metric} = {value:.6g} ({source})", bounds)


class BeatsAlias(Gate):
    """The candidate must beat the current holder of ``alias`` on ``metric`` by at least ``by``,
    both evaluated on the same dataset (same content digest)."""

    kind = "beats"

    def __init__(
        self,
        alias: str,
        metric: str,
        *,
        by: float = 0.0,
        higher_is_better: bool = True,
        dataset: str | None = None,
    ) -> None:
        self.alias = alias
        self.metric = metric
        self.by = by
        self.higher_is_better = higher_is_better
        self.dataset = dataset

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "alias": self.alias,
            "metric": self.metric,
            "by": self.by,
            "higher_is_better": self.higher_is_better,
        }
        if self.dataset is not None:
            out["dataset"] = self.dataset
        return out

    def check(self, ctx: GateContext) -> GateResult:
        label = f"beats {self.alias} on {self.metric}"
        holder = ctx.alias_holder(self.alias)
        if holder is None:
            return GateResult(label, True, f"no version holds {self.alias!r} yet: nothing to beat")
        if holder == ctx.version:
            return GateResult(label, True, f"version {holder} already holds {self.alias!r}")
        # Evaluations come newest first: keep the newest per dataset digest.
        mine: dict[str, Evaluation] = {}
        theirs: dict[str, Evaluation] = {}
        for version, found in ((ctx.version, mine), (holder, theirs)):
            for e in ctx.evaluations(version):
                if self.metric in e.metrics:
                    found.setdefault(e.dataset_digest, e)
        common = [
            e
            for d, e in mine.items()
            if d in theirs and (self.dataset is None or self.dataset in (e.dataset_name, d))
        ]
        if not common:
            named = f" named {self.dataset!r}" if self.dataset else ""
            return GateResult(
                label,
                False,
                f"versions {ctx.version} and {holder} have no evaluation of {self.metric!r} on a "
                f"common dataset{named}: evaluate both on the same data "
                f"(loopml models evaluate models:/{ctx.name}/<version> DATA)",
            )
        ev = max(common, key=lambda e: e.time)  # the newest common dataset
        cand, champ = ev.metrics[self.metric], theirs[ev.dataset_digest].metrics[self.metric]
        margin = cand - champ if self.higher_is_better else champ - cand
        numbers = {
            "candidate": cand,
            "holder": champ,
            "holder_version": holder,
            "margin": margin,
            "required": self.by,
            "dataset": ev.dataset_name,
            "dataset_digest": ev.dataset_digest,
        }
        on = ev.dataset_name or ev.dataset_digest[:12]
        verdict = (
            f"{self.metric} {cand:.6g} vs {champ:.6g} (version {holder}) on {on}: "
            f"margin {margin:+.6g}, needs >= {self.by:g}"
        )
        return GateResult(label, margin >= self.by and not math.isnan(margin), verdict, numbers)


class RequireApproval(Gate):
    """At least ``count`` distinct people (from ``approvers``, when given) approved the move."""

    kind = "approval"

    def __init__(self, *, count: int = 1, approvers: tuple[str, ...] | list[str] = ()) -> None:
        self.count = count
        self.approvers = tuple(approvers)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "count": self.count}
        if self.approvers:
            out["approvers"] = list(self.approvers)
        return out

    def check(self, ctx: GateContext) -> GateResult:
        got = sorted(set(ctx.approvers(ctx.version, ctx.alias)))
        if self.approvers:
            got = [a for a in got if a in self.approvers]
        numbers = {"approvals": len(got), "required": self.count, "approvers": got}
        who = ", ".join(got) or "nobody"
        detail = f"{len(got)} of {self.count} approvals ({who})"
        if len(got) < self.count:
            allowed = f" from {', '.join(self.approvers)}" if self.approvers else ""
            detail += (
                f": approve with `loopml models approve {ctx.name} {ctx.version} --for "
                f"{ctx.alias}`{allowed}"
            )
        return GateResult("human approval", len(got) >= self.count, detail, numbers)


GATE_KINDS: dict[str, Callable[..., Gate]] = {
    MetricThreshold.kind: MetricThreshold,
    BeatsAlias.kind: BeatsAlias,
    RequireApproval.kind: RequireApproval,
}


def gate_from_dict(data: Mapping[str, Any]) -> Gate:
    """Build a gate from its declarative form, e.g. ``{"kind": "threshold", "metric": "f1",
    "min": 0.9}`` (``kind`` may be left out when the keys make it plain)."""
    spec = dict(data)
    kind = spec.pop("kind", None)
    if kind is None:
        kind = "beats" if "alias" in spec else "approval" if "count" in spec else "threshold"
    factory = GATE_KINDS.get(kind)
    if factory is None:
        valid = ", ".join(sorted(GATE_KINDS))
        raise InvalidArgument(f"unknown gate kind {kind!r}: use one of {valid}")
    try:
        if kind == "threshold" or kind == "beats":
            if kind == "beats":
                return factory(spec.pop("alias"), spec.pop("metric"), **spec)
            return factory(spec.pop("metric"), **spec)
        return factory(**spec)
    except (KeyError, TypeError) as exc:
        raise InvalidArgument(f"invalid {kind} gate {dict(data)!r}: {exc}") from None
