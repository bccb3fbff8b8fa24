"""Live performance metrics against scikit-learn's, and the label-free estimate against the
truth it estimates."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.errors import InvalidArgument, InvalidState
from loopml.monitoring.performance import (
    ConfidenceEstimator,
    classification_metrics,
    regression_metrics,
)


def test_classification_metrics_match_scikit_learn_and_skip_missing_labels() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 500)
    proba = np.clip(truth * 0.6 + rng.normal(0.2, 0.25, 500), 0, 1)
    predicted = (proba >= 0.5).astype(int)
    with_missing = truth.astype(object)
    with_missing[:50] = None
    got = classification_metrics(with_missing, predicted, np.c_[1 - proba, proba])
    keep = slice(50, None)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(truth[keep], predicted[keep]))
    assert got["precision"] == pytest.approx(metrics.precision_score(truth[keep], predicted[keep]))
    assert got["recall"] == pytest.approx(metrics.recall_score(truth[keep], predicted[keep]))
    assert got["f1"] == pytest.approx(metrics.f1_score(truth[keep], predicted[keep]))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth[keep], proba[keep]))
    assert classification_metrics([None, None], [0, 1]) == {}


def test_regression_metrics() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 2.0, 2.0, 5.0])
    got = regression_metrics(truth, predicted)
    assert got["mae"] == pytest.approx(0.625)
    assert got["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    with pytest.raises(InvalidArgument, match="3 labels for 4 predictions"):
        regression_metrics(truth[:3], predicted)


def test_estimated_accuracy_tracks_the_real_one_under_covariate_shift() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.6, random_state=0)
    X_ref, X_cur, y_ref, y_cur = train_test_split(X_rest, y_rest, test_size=0.5, random_state=1)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(X_train, y_train)
    estimator = ConfidenceEstimator().fit(model.predict_proba(X_ref), y_ref)
    # covariate shift: the current window holds only the larger tumours
    shifted = X_cur[:, 0] > np.median(X_cur[:, 0])
    for rows in (slice(None), shifted):
        estimate = estimator.estimate(model.predict_proba(X_cur[rows]))
        actual = classification_metrics(y_cur[rows], model.predict(X_cur[rows]))
        assert abs(estimate["estimated_accuracy"] - actual["accuracy"]) < 0.06, (
            estimate,
            actual,
        )


def test_estimator_refuses_what_it_cannot_do() -> None:
    with pytest.raises(InvalidState, match="not fitted"):
        ConfidenceEstimator().estimate(np.array([0.2, 0.9]))
    with pytest.raises(InvalidArgument, match="binary"):
        ConfidenceEstimator().fit(np.array([0.1, 0.5, 0.9]), [0, 1, 2])
    with pytest.raises(InvalidArgument, match="between 0 and 1"):
        ConfidenceEstimator(threshold=1.5).fit(np.array([0.1, 0.9]), [0, 1])
