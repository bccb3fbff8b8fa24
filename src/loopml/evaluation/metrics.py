"""Classification and regression metrics, computed with scikit-learn.

Classification: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary: for the positive
class, the greater of the two labels; multiclass: macro averages over the labels), and, when
class probabilities are available, ``roc_auc`` (binary: on the positive class' probability;
multiclass: one-vs-rest, macro average) and ``log_loss``; plus the confusion matrix.
Regression: ``rmse``, ``mae``, ``r2`` and ``mape``.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "ClassificationOutcome",
    "classification_metrics",
    "python_scalar",
    "regression_metrics",
]


@dataclass(frozen=True, slots=True)
class ClassificationOutcome:
    """Metrics of a classifier, and what the plots of its results need."""

    metrics: dict[str, float]
    labels: list[Any]  # sorted; the rows and columns of the confusion matrix
    confusion_matrix: list[list[int]]
    average: str  # "binary" or "macro"
    positive_label: Any  # binary only, else None
    positive_scores: NDArray[Any] | None  # binary with probabilities: P(positive class)


def python_scalar(value: Any) -> Any:
    """A NumPy scalar as the equivalent Python value (for JSON and tags)."""
    return value.item() if hasattr(value, "item") else value


def classification_metrics(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    *,
    proba: NDArray[Any] | None = None,
    classes: NDArray[Any] | None = None,
) -> ClassificationOutcome:
    """Metrics of predicted labels ``y_pred`` (and class probabilities ``proba``, whose columns
    follow ``classes``, or the sorted labels when ``classes`` is None)."""
    import numpy as np
    from sklearn import metrics as m

    try:
        seen = np.unique(np.concatenate([y_true, y_pred]))
        labels = np.unique(np.concatenate([seen, classes])) if classes is not None else seen
    except TypeError as exc:
        raise InvalidArgument(
            f"labels and predictions cannot be compared ({exc}): targets hold "
            f"{_kinds(y_true)} but the model predicts {_kinds(y_pred)}"
        ) from None
    binary = len(labels) <= 2
    average = "binary" if binary else "macro"
    positive = labels[-1] if binary else None
    extra: dict[str, Any] = {"pos_label": positive} if binary else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision/recall: reported as 0.0
        try:
            metrics = {
                "accuracy": float(m.accuracy_score(y_true, y_pred)),
                "precision": float(
                    m.precision_score(y_true, y_pred, average=average, zero_division=0, **extra)
                ),
                "recall": float(
                    m.recall_score(y_true, y_pred, average=average, zero_division=0, **extra)
                ),
                "f1": float(m.f1_score(y_true, y_pred, average=average, zero_division=0, **extra)),
            }
        except ValueError as exc:
            raise InvalidArgument(f"cannot compute classification metrics: {exc}") from None
        matrix = m.confusion_matrix(y_true, y_pred, labels=labels)
        scores = None
        if proba is not None:
            proba_metrics, scores = _probability_metrics(
                y_true, proba, labels if classes is None else classes, positive
            )
            metrics.update(proba_metrics)
    return ClassificationOutcome(
        metrics=metrics,
        labels=[python_scalar(x) for x in labels],
        confusion_matrix=[[int(c) for c in row] for row in matrix],
        average=average,
        positive_label=python_scalar(positive) if binary else None,
        positive_scores=scores,
    )


def _probability_metrics(
    y_true: NDArray[Any], proba: NDArray[Any], classes: NDArray[Any], positive: Any
) -> tuple[dict[str, float], NDArray[Any] | None]:
    import numpy as np
    from sklearn import metrics as m

    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 2 and proba.shape[1] == 1:
        proba = proba.ravel()
    binary = positive is not None
    scores: NDArray[Any] | None
    if proba.ndim == 1:
        if not binary:
            return {}, None
        scores = proba
    elif proba.ndim == 2 and proba.shape[1] == len(classes):
        where = np.flatnonzero(classes == positive) if binary else np.array([])
        scores = proba[:, int(where[0]) if where.size else -1] if binary else None
    else:  # columns that cannot be matched to the classes: no probability metrics
        return {}, None
    out: dict[str, float] = {}
    single_class = len(np.unique(y_true)) < 2
    if not single_class:  # ROC AUC is undefined when every row has the same label
        try:
            if binary:
                out["roc_auc"] = float(m.roc_auc_score(y_true == positive, scores))
            else:
                out["roc_auc"] = float(
                    m.roc_auc_score(
                        y_true, proba, multi_class="ovr", average="macro", labels=classes
                    )
                )
        except ValueError:  # e.g. a class of the model absent from the targets
            pass
    with contextlib.suppress(ValueError):
        out["log_loss"] = float(
            m.log_loss(y_true, proba if proba.ndim == 2 else scores, labels=classes)
        )
    return out, scores


def regression_metrics(y_true: NDArray[Any], y_pred: NDArray[Any]) -> dict[str, float]:
    """``rmse``, ``mae``, ``r2`` and ``mape`` (sklearn's: a zero target does not divide by 0)."""
    import numpy as np
    from sklearn import metrics as m

    for what, values in (("targets", y_true), ("predictions", y_pred)):
        if values.dtype.kind not in "iufb":
            raise InvalidArgument(
                f"regression metrics need numbers, but the {what} hold {_kinds(values)}: pass "
                "task='classification' for class labels, or numeric targets",
                dtype=str(values.dtype),
            )
    y_true = y_true.astype(float)
    y_pred = np.asarray(y_pred, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 of a single row: reported as NaN
        return {
            "rmse": float(m.root_mean_squared_error(y_true, y_pred)),
            "mae": float(m.mean_absolute_error(y_true, y_pred)),
            "r2": float(m.r2_score(y_true, y_pred)),
            "mape": float(m.mean_absolute_percentage_error(y_true, y_pred)),
        }


def _kinds(values: NDArray[Any]) -> str:
    sample = ", ".join(repr(python_scalar(x)) for x in values[:3])
    return f"values of dtype {values.dtype} such as {sample}"
