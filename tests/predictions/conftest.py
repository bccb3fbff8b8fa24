"""Fixtures for the prediction log tests: a real artifact store and entry builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.artifacts import ArtifactStore
from loopml.predictions import FeedbackEntry, PredictionEntry
from loopml.store.sql import SqlStore

T0 = 1_750_000_000_000  # a fixed epoch-ms origin for timestamps


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore.from_uri(f"sqlite:///{tmp_path / 'log.db'}")
    yield s
    s.close()


def prediction(
    request_id: str,
    *,
    ts: int = T0,
    inputs: Any = None,
    outputs: dict[str, Any] | None = None,
    model: str = "churn",
    version: str = "1",
    role: str = "primary",
    latency_ms: float = 2.5,
) -> PredictionEntry:
    """A one-row request by default: features age and plan, a label and probabilities."""
    return PredictionEntry(
        request_id=request_id,
        model_name=model,
        model_version=version,
        role=role,  # type: ignore[arg-type]
        timestamp_ms=ts,
        latency_ms=latency_ms,
        inputs={"age": np.array([41]), "plan": np.array(["gold"])} if inputs is None else inputs,
        outputs=(
            {"predict": np.array([1]), "predict_proba": np.array([[0.25, 0.75]])}
            if outputs is None
            else outputs
        ),
        protocol="invocations",
    )


def feedback(
    request_id: str, ground_truth: Any, *, ts: int = T0 + 1000, model: str = "churn"
) -> FeedbackEntry:
    return FeedbackEntry(
        request_id=request_id,
        model_name=model,
        model_version="1",
        timestamp_ms=ts,
        ground_truth=ground_truth,
    )
