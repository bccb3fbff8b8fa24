"""What the XGBoost and LightGBM integrations share: finding their estimator classes and
logging per-round evaluation results."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from loopml.autolog.sessions import FitSession
from loopml.core.entities import Metric, now_ms

__all__ = ["log_eval_results", "metric_key", "subclasses_in"]

_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")


def subclasses_in(base: type[Any], module: str) -> list[type[Any]]:
    """``base`` and its subclasses (at any depth) defined in ``module``."""
    found: list[type[Any]] = []
    todo = [base]
    while todo:
        cls = todo.pop()
        if cls not in found and cls.__module__ == module:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def metric_key(dataset: str, metric: str) -> str:
    """``<dataset>-<metric>``, with characters a metric key cannot hold replaced by ``_``."""
    return _BAD_KEY_CHARS.sub("_", f"{dataset}-{metric}")


def log_eval_results(session: FitSession, results: Mapping[str, Mapping[str, Any]]) -> None:
    """Log ``{dataset: {metric: [value per round]}}`` as metric series stepped by round."""
    ts = now_ms()
    points: list[Metric] = []
    for dataset, metrics in results.items():
        for metric, values in metrics.items():
            key = metric_key(str(dataset), str(metric))
            for step, value in enumerate(values):
                if isinstance(value, (int, float)) or hasattr(value, "item"):
                    points.append(Metric(key, float(value), step, ts))
    session.log_metric_points(points)
