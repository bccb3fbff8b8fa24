"""Fixtures for the evaluation tests: a private tracking store and three fitted models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Fitted:
    model: Any
    X: Any  # held-out features
    y: Any  # held-out labels


@pytest.fixture(scope="session")
def binary() -> Fitted:
    """LogisticRegression pipeline on breast_cancer; DataFrame features, Series labels."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return Fitted(model.fit(X_train, y_train), X_test, y_test)


@pytest.fixture(scope="session")
def multiclass() -> Fitted:
    """LogisticRegression on iris; NumPy features and labels."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    return Fitted(LogisticRegression(max_iter=1000).fit(X_train, y_train), X_test, y_test)


@pytest.fixture(scope="session")
def regressor() -> Fitted:
    """Ridge on diabetes; NumPy features and labels."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    return Fitted(Ridge(alpha=0.5).fit(X_train, y_train), X_test, y_test)
