"""Evaluation plots, drawn with matplotlib's Agg canvas (never pyplot, so the caller's backend
and open figures are left alone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

__all__ = [
    "confusion_matrix_figure",
    "precision_recall_figure",
    "residuals_figure",
    "roc_curve_figure",
]


def _figure(width: float = 5.0, height: float = 4.0) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> Figure:
    """Counts of true (rows) against predicted (columns) labels, annotated in each cell."""
    import numpy as np

    counts = np.asarray(matrix)
    size = max(4.0, 0.6 * len(labels) + 2.5)
    figure = _figure(size, size * 0.85)
    ax = figure.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax)
    ticks = range(len(labels))
    ax.set_xticks(list(ticks), [str(x) for x in labels], rotation=45, ha="right")
    ax.set_yticks(list(ticks), [str(x) for x in labels])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title("Confusion matrix")
    threshold = counts.max() / 2 if counts.size else 0
    for i in ticks:
        for j in ticks:
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
            )
    return figure


def roc_curve_figure(is_positive: NDArray[Any], scores: NDArray[Any], auc: float) -> Figure:
    """The ROC curve of a binary classifier's positive-class scores."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(is_positive, scores)
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(fpr, tpr, label=f"ROC curve (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return figure


def precision_recall_figure(is_positive: NDArray[Any], scores: NDArray[Any]) -> Figure:
    """The precision-recall curve of a binary classifier's positive-class scores."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(is_positive, scores)
    average = float(average_precision_score(is_positive, scores))
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(recall, precision, drawstyle="steps-post", label=f"AP = {average:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0.0, 1.05)
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return figure


def residuals_figure(y_true: NDArray[Any], y_pred: NDArray[Any]) -> Figure:
    """Residuals (true minus predicted) against the predicted values."""
    import numpy as np

    predicted = np.asarray(y_pred, dtype=float)
    residuals = np.asarray(y_true, dtype=float) - predicted
    figure = _figure()
    ax = figure.add_subplot()
    ax.scatter(predicted, residuals, s=10, alpha=0.6)
    ax.axhline(0.0, linestyle="--", color="grey")
    ax.set_xlabel("predicted value")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals")
    return figure
