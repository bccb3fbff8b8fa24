"""Reading the log back: time windows, roles, versions and the join with ground truth."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from loopml.artifacts import ArtifactStore
from loopml.errors import InvalidArgument
from loopml.predictions import PredictionEntry, PredictionLogger, read_feedback, read_predictions
from loopml.store.sql import SqlStore

from .conftest import T0, feedback, prediction


@pytest.fixture
def logger(sqlite_store: SqlStore, artifacts: ArtifactStore) -> Iterator[PredictionLogger]:
    """A logger whose every flush makes new segments (so windows cut across several)."""
    with PredictionLogger(sqlite_store, artifacts, flush_interval_s=3600) as pl:
        yield pl


def _two_row(request_id: str, ts: int) -> PredictionEntry:
    return prediction(
        request_id,
        ts=ts,
        inputs={"x": np.array([1.0, 2.0])},
        outputs={"predict": np.array([0, 1])},
    )


def test_scalar_and_per_row_feedback_join_and_missing_ground_truth_is_null(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger.log(prediction("one", ts=T0))
    logger.log(_two_row("two", T0 + 1))
    logger.log(prediction("none", ts=T0 + 2))
    logger.flush()
    logger.log_feedback(feedback("one", 1, ts=T0 + 10))
    logger.log_feedback(feedback("two", [0, 1], ts=T0 + 20))
    logger.flush()

    df = read_predictions(sqlite_store, artifacts, "churn")
    got = list(zip(df["request_id"], df["row"], df["ground_truth"], df["feedback_ms"], strict=True))
    assert got[:3] == [("one", 0, 1, T0 + 10), ("two", 0, 0, T0 + 20), ("two", 1, 1, T0 + 20)]
    assert got[3][:2] == ("none", 0)
    assert pd.isna(got[3][2]) and got[3][3] is pd.NA


def test_the_latest_feedback_for_a_row_wins(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger.log(_two_row("r", T0))
    logger.log_feedback(feedback("r", ["cat", "dog"], ts=T0 + 10))
    logger.flush()
    logger.log_feedback(feedback("r", ["cow", "dog"], ts=T0 + 30))  # a later segment
    logger.flush()
    logger.log_feedback(feedback("r", "owl", ts=T0 + 20))  # written last, but older
    logger.flush()

    df = read_predictions(sqlite_store, artifacts, "churn")
    assert list(df["ground_truth"]) == ["cow", "dog"]
    assert list(df["feedback_ms"]) == [T0 + 30, T0 + 30]
    assert len(read_feedback(sqlite_store, artifacts, "churn")) == 5  # the raw log keeps all


def test_a_time_window_keeps_rows_in_start_inclusive_end_exclusive(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    for i in range(10):
        logger.log(prediction(f"r{i}", ts=T0 + 100 * i))
        if i % 3 == 2:
            logger.flush()  # segments [0..2], [3..5], [6..8], [9]
    logger.log_feedback(feedback("r4", 1, ts=T0 + 5000))
    logger.flush()

    df = read_predictions(sqlite_store, artifacts, "churn", start_ms=T0 + 200, end_ms=T0 + 700)
    assert list(df["request_id"]) == ["r2", "r3", "r4", "r5", "r6"]
    assert list(df["ground_truth"].notna()) == [False, False, True, False, False]
    assert list(read_feedback(sqlite_store, artifacts, "churn", end_ms=T0 + 5000)["row"]) == []
    empty = read_predictions(sqlite_store, artifacts, "churn", start_ms=T0 + 5000)
    assert len(empty) == 0
    assert list(empty.columns[:8]) == [
        "request_id", "row", "timestamp_ms", "latency_ms",
        "model_name", "model_version", "role", "protocol",
    ]  # fmt: skip
    assert list(empty.columns[-2:]) == ["ground_truth", "feedback_ms"]


def test_rows_come_back_ordered_by_timestamp_across_versions(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger.log(prediction("late", ts=T0 + 50, version="1"))
    logger.log(prediction("early", ts=T0, version="2"))
    logger.log(prediction("middle", ts=T0 + 20, version="1"))
    logger.flush()
    df = read_predictions(sqlite_store, artifacts, "churn", with_feedback=False)
    assert list(df["request_id"]) == ["early", "middle", "late"]
    assert "ground_truth" not in df.columns
    only_v1 = read_predictions(sqlite_store, artifacts, "churn", model_version="1")
    assert list(only_v1["request_id"]) == ["middle", "late"]


def test_shadow_rows_are_read_only_when_asked_for(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger.log(prediction("r1", role="primary"))
    logger.log(prediction("r1", role="shadow", version="2"))
    logger.log_feedback(feedback("r1", 1))
    logger.flush()
    primary = read_predictions(sqlite_store, artifacts, "churn")
    assert list(zip(primary["role"], primary["model_version"], strict=True)) == [("primary", "1")]
    shadow = read_predictions(sqlite_store, artifacts, "churn", role="shadow")
    assert list(shadow["ground_truth"]) == [1]  # ground truth belongs to the request
    assert len(read_predictions(sqlite_store, artifacts, "churn", role=None)) == 2
    with pytest.raises(InvalidArgument, match=r"invalid role 'canary': must be one of 'primary'"):
        read_predictions(sqlite_store, artifacts, "churn", role="canary")


def test_segments_with_different_column_types_are_read_together(
    logger: PredictionLogger, sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger.log(prediction("a", ts=T0, inputs={"x": np.array([1])}))
    logger.flush()
    logger.log(prediction("b", ts=T0 + 1, inputs={"x": np.array(["high"])}))
    logger.flush()
    logger.log(prediction("c", ts=T0 + 2, inputs={"z": np.array([0.5])}))
    logger.flush()
    df = read_predictions(sqlite_store, artifacts, "churn")
    assert list(df["input.x"][:2]) == ["1", "high"] and pd.isna(df["input.x"][2])
    assert list(df["input.z"].isna()) == [True, True, False]
