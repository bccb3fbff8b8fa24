"""What ``evaluate`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EvaluationResult"]


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """Metrics of one model on one dataset, and where they were recorded.

    ``run_id`` is the run that holds the metrics, plots and tags (None when ``log=False``);
    ``artifacts`` are the paths of the files logged to it. ``confusion_matrix`` (classification
    only) has one row per true label and one column per predicted label, both in the order of
    ``labels``.
    """

    metrics: dict[str, float]
    task: str
    dataset_digest: str
    run_id: str | None
    artifacts: tuple[str, ...] = ()
    confusion_matrix: list[list[int]] | None = None
    labels: list[Any] | None = None
    model_uri: str = ""
    tags: dict[str, str] = field(default_factory=dict)
