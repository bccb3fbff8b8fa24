"""Writing an evaluation into a run: metrics, tags, the dataset input, plots and the matrix.

The tag keys below are read back by the registry's promotion gates to find the evaluations of
two model versions on the same dataset: they must not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from loopml.core.entities import DatasetInput, Metric, now_ms
from loopml.evaluation.metrics import ClassificationOutcome
from loopml.evaluation.tasks import CLASSIFICATION

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from loopml.tracking.client import Client

__all__ = [
    "ARTIFACT_DIR",
    "DATASET_SOURCE",
    "TAG_PREFIX",
    "Evaluated",
    "evaluation_tags",
    "record",
]

TAG_PREFIX: Final = "loopml.evaluation."
ARTIFACT_DIR: Final = "evaluation"
DATASET_SOURCE: Final = "evaluate"
DATASET_CONTEXT: Final = "evaluation"


@dataclass(frozen=True, slots=True)
class Evaluated:
    """Everything computed by an evaluation, before it is recorded."""

    task: str
    metrics: dict[str, float]
    targets: NDArray[Any]
    predictions: NDArray[Any]
    outcome: ClassificationOutcome | None
    dataset_name: str
    dataset_digest: str
    source_type: str


def evaluation_tags(
    evaluated: Evaluated, model_uri: str, registered: tuple[str, int] | None
) -> dict[str, str]:
    tags = {
        TAG_PREFIX + "model_uri": model_uri,
        TAG_PREFIX + "dataset_digest": evaluated.dataset_digest,
        TAG_PREFIX + "dataset_name": evaluated.dataset_name,
        TAG_PREFIX + "task": evaluated.task,
    }
    if evaluated.outcome is not None:
        tags[TAG_PREFIX + "average"] = evaluated.outcome.average
        if evaluated.outcome.positive_label is not None:
            tags[TAG_PREFIX + "positive_label"] = str(evaluated.outcome.positive_label)
    if registered is not None:
        tags[TAG_PREFIX + "model_name"] = registered[0]
        tags[TAG_PREFIX + "model_version"] = str(registered[1])
    return tags


def record(
    client: Client, run_id: str, evaluated: Evaluated, tags: Mapping[str, str]
) -> tuple[str, ...]:
    """Log the evaluation into ``run_id``; returns the paths of the artifacts written."""
    ts = now_ms()
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, 0, ts) for k, v in evaluated.metrics.items()],
        tags=tags,
    )
    client.log_inputs(
        run_id,
        [
            DatasetInput(
                evaluated.dataset_name,
                evaluated.dataset_digest,
                source=DATASET_SOURCE,
                source_type=evaluated.source_type,
                context=DATASET_CONTEXT,
            )
        ],
    )
    paths: list[str] = []
    outcome = evaluated.outcome
    if evaluated.task == CLASSIFICATION and outcome is not None:
        path = f"{ARTIFACT_DIR}/confusion_matrix.json"
        client.log_dict(
            run_id, {"labels": outcome.labels, "matrix": outcome.confusion_matrix}, path
        )
        paths.append(path)
    for name, figure in _figures(evaluated):
        path = f"{ARTIFACT_DIR}/{name}.png"
        client.log_figure(run_id, figure, path)
        paths.append(path)
    return tuple(paths)


def _figures(evaluated: Evaluated) -> Sequence[tuple[str, Figure]]:
    from loopml.evaluation import plots

    outcome = evaluated.outcome
    if outcome is None:
        return [("residuals", plots.residuals_figure(evaluated.targets, evaluated.predictions))]
    figures = [
        (
            "confusion_matrix",
            plots.confusion_matrix_figure(outcome.confusion_matrix, outcome.labels),
        )
    ]
    scores = outcome.positive_scores
    if scores is not None and "roc_auc" in outcome.metrics:
        is_positive = evaluated.targets == outcome.positive_label
        figures.append(
            ("roc_curve", plots.roc_curve_figure(is_positive, scores, outcome.metrics["roc_auc"]))
        )
        figures.append(
            ("precision_recall_curve", plots.precision_recall_figure(is_positive, scores))
        )
    return figures
