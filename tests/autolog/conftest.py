"""Fixtures for the autolog tests: a private tracking store, and autolog always off afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.tracking import fluent


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.set_tracking(
        f"sqlite:///{tmp_path / 'ws' / 'loopml.db'}", artifact_uri=str(tmp_path / "a")
    )
    yield c
    loopml.autolog(disable=True)
    loopml.end_run()
    fluent._client = None
    c.close()


@pytest.fixture(scope="session")
def cancer() -> tuple[object, object]:
    """breast_cancer as a DataFrame (standardised, so models converge fast) and a Series."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return (X - X.mean()) / X.std(), y
