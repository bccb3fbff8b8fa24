"""Live performance: metrics on predictions joined with ground truth, and their estimate while
the labels are missing.

:func:`classification_metrics` and :func:`regression_metrics` score a window whose ground truth
arrived (through the server's ``/feedback`` or loaded later by request id).
:class:`ConfidenceEstimator` estimates a classifier's accuracy, precision, recall and F1 from its
predicted probabilities alone, in the spirit of NannyML's CBPE: it calibrates the probabilities
on reference data with known labels, then sums the calibrated probabilities into an expected
confusion matrix. It is robust to covariate shift and blind to concept drift (a changed
relation between inputs and label leaves the probabilities as they were), which is why the
monitor reports how close the estimate came once the labels arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidState

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "ConfidenceEstimator",
    "classification_metrics",
    "regression_metrics",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")


def classification_metrics(
    y_true: Sequence[Any] | NDArray[Any],
    y_pred: Sequence[Any] | NDArray[Any],
    proba: NDArray[Any] | None = None,
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (binary: of the positive class, the larger label;
    more classes: macro averages) and ROC AUC when ``proba`` is given and both classes occur.
    Rows whose label is missing are left out; no labelled row gives an empty dict."""
    import numpy as np
    from sklearn import metrics

    truth, predicted, keep = _labelled(y_true, y_pred)
    if not len(truth):
        return {}
    labels = np.unique(np.concatenate([truth, predicted]))
    binary = len(labels) <= 2
    average = "binary" if binary and len(labels) == 2 else "macro"
    options: dict[str, Any] = {"zero_division": 0, "average": average}
    if average == "binary":
        options["pos_label"] = labels[-1]
    out = {
        "accuracy": float(metrics.accuracy_score(truth, predicted)),
        "precision": float(metrics.precision_score(truth, predicted, **options)),
        "recall": float(metrics.recall_score(truth, predicted, **options)),
        "f1": float(metrics.f1_score(truth, predicted, **options)),
    }
    if proba is not None and len(np.unique(truth)) == 2:
        scores = np.asarray(proba, dtype=np.float64)[keep]
        positive = scores[:, -1] if scores.ndim == 2 else scores
        out["roc_auc"] = float(metrics.roc_auc_score(truth == labels[-1], positive))
    return out


def regression_metrics(
    y_true: Sequence[Any] | NDArray[Any], y_pred: Sequence[Any] | NDArray[Any]
) -> dict[str, float]:
    """RMSE, MAE and R² on the rows that have a label (an empty dict when none has)."""
    import numpy as np

    truth, predicted, _ = _labelled(y_true, y_pred)
    if not len(truth):
        return {}
    truth = truth.astype(np.float64)
    predicted = predicted.astype(np.float64)
    error = predicted - truth
    variance = float(np.var(truth))
    out = {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
    }
    if variance > 0:
        out["r2"] = float(1.0 - np.mean(error**2) / variance)
    return out


class ConfidenceEstimator:
    """Estimate a binary classifier's metrics from predicted probabilities (no labels).

    scikit-learn contract: ``__init__`` stores the parameters, :meth:`fit` learns an isotonic
    calibration of the positive class's probability on reference rows with labels, and
    :meth:`estimate` returns ``estimated_accuracy``, ``estimated_precision``,
    ``estimated_recall`` and ``estimated_f1`` for rows without labels. ``threshold`` is the
    probability above which the model predicts the positive class.
    """

    def __init__(self, *, threshold: float = 0.5, calibrate: bool = True) -> None:
        self.threshold = threshold
        self.calibrate = calibrate

    def get_params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "calibrate": self.calibrate}

    def fit(self, proba: NDArray[Any], y_true: Sequence[Any] | NDArray[Any]) -> ConfidenceEstimator:
        import numpy as np

        if not 0.0 < self.threshold < 1.0:
            raise InvalidArgument(f"threshold must be between 0 and 1, got {self.threshold}")
        positive = _positive(proba)
        truth = np.asarray(y_true)
        if len(positive) != len(truth) or not len(truth):
            raise InvalidArgument(
                f"fit needs one label per probability row and at least one row; got "
                f"{len(positive)} probabilities and {len(truth)} labels"
            )
        classes = np.unique(truth)
        if len(classes) > 2:
            raise InvalidArgument(
                f"ConfidenceEstimator handles binary classifiers; the labels have "
                f"{len(classes)} classes ({', '.join(map(str, classes[:5]))}, ...)"
            )
        self.classes_ = classes
        hits = (truth == classes[-1]).astype(np.float64)
        if self.calibrate and len(classes) == 2:
            from sklearn.isotonic import IsotonicRegression

            self.calibrator_: Any = IsotonicRegression(
                y_min=0.0, y_max=1.0, out_of_bounds="clip"
            ).fit(positive, hits)
        else:
            self.calibrator_ = None
        return self

    def estimate(self, proba: NDArray[Any]) -> dict[str, float]:
        import numpy as np

        if not hasattr(self, "classes_"):
            raise InvalidState("ConfidenceEstimator is not fitted: call fit() on reference data")
        raw = _positive(proba)
        if not len(raw):
            return {}
        p = self.calibrator_.predict(raw) if self.calibrator_ is not None else raw
        predicted = raw >= self.threshold
        tp = float(np.sum(p[predicted]))
        fp = float(np.sum(1.0 - p[predicted]))
        fn = float(np.sum(p[~predicted]))
        tn = float(np.sum(1.0 - p[~predicted]))
        precision = tp / (tp + fp) if tp + fp > 0 else 0.0
        recall = tp / (tp + fn) if tp + fn > 0 else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {
            "estimated_accuracy": (tp + tn) / len(p),
            "estimated_precision": precision,
            "estimated_recall": recall,
            "estimated_f1": f1,
        }


def _positive(proba: NDArray[Any]) -> np.ndarray[Any, Any]:
    import numpy as np

    array = np.asarray(proba, dtype=np.float64)
    if array.ndim == 2:
        if array.shape[1] > 2:
            raise InvalidArgument(
                f"probabilities have {array.shape[1]} columns; ConfidenceEstimator handles "
                "binary classifiers (2 columns, or one column of the positive class)"
            )
        array = array[:, -1]
    if array.ndim != 1:
        raise InvalidArgument(f"probabilities must be 1-D or 2-D, got shape {array.shape}")
    return array


def _labelled(
    y_true: Sequence[Any] | NDArray[Any], y_pred: Sequence[Any] | NDArray[Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    import numpy as np
    import pandas as pd

    truth = np.asarray(y_true)
    predicted = np.asarray(y_pred)
    if truth.shape[0] != predicted.shape[0]:
        raise InvalidArgument(
            f"{truth.shape[0]} labels for {predicted.shape[0]} predictions: give one each"
        )
    keep = ~pd.isna(truth)
    truth, predicted = truth[keep], predicted[keep]
    if truth.dtype == object:  # labels read back from JSON feedback: align with predictions
        try:
            truth = truth.astype(predicted.dtype)
        except (TypeError, ValueError):
            truth = truth.astype(str)
            predicted = predicted.astype(str)
    return truth, predicted, keep
