"""Fixtures for the evaluation tests: a private tracking store and three fitted models."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml.tracking import fluent


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.set_tracking(
        f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}", artifact_uri=str(tmp_path / "a")
    )
    yield c
    loopml.end_run()
    fluent._client = None
    c.close()


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
