"""PredictionLogger: the queue, the writer thread, segments in the stores, failures."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loopml
from loopml.artifacts import ArtifactStore
from loopml.errors import InvalidArgument, InvalidState
from loopml.predictions import (
    PredictionEntry,
    PredictionLogger,
    SegmentKind,
    read_feedback,
    read_predictions,
)
from loopml.store.base import MetadataStore
from loopml.store.sql import SqlStore

from .conftest import T0, feedback, prediction

MODELS = [("churn", "1"), ("churn", "2"), ("fraud", "7")]


def _request(thread: int, i: int) -> tuple[str, str, str, int]:
    """Model, version, request id and row count of request ``i`` of ``thread``."""
    model, version = MODELS[(thread + i) % len(MODELS)]
    return model, version, f"t{thread}-r{i}", 1 + i % 3


def _entry(thread: int, i: int) -> PredictionEntry:
    model, version, request_id, n = _request(thread, i)
    base = thread * 100_000 + i * 10
    return prediction(
        request_id,
        ts=T0 + i,
        model=model,
        version=version,
        inputs=pd.DataFrame({"x": np.arange(base, base + n), "plan": ["gold", "free", "pro"][:n]}),
        outputs={
            "predict": np.arange(base, base + n) % 2,
            "predict_proba": np.column_stack([np.full(n, 0.25), np.full(n, 0.75)]),
        },
        latency_ms=float(i),
    )


def test_entries_from_many_threads_are_logged_exactly_once(
    store: MetadataStore, artifacts: ArtifactStore
) -> None:
    threads, per_thread = 4, 750
    logger = PredictionLogger(store, artifacts, segment_rows=400, flush_interval_s=0.05)
    logger.start()
    refused: list[int] = []

    def produce(thread: int) -> None:
        refused.extend(i for i in range(per_thread) if not logger.log(_entry(thread, i)))

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    logger.close()

    assert refused == []
    expected = [_request(t, i) for t in range(threads) for i in range(per_thread)]
    total_rows = sum(n for *_, n in expected)
    stats = logger.stats()
    assert (stats.logged_rows, stats.dropped_entries, stats.write_errors) == (total_rows, 0, 0)
    assert stats.queue_depth == 0

    for model in ("churn", "fraud"):
        df = read_predictions(store, artifacts, model, with_feedback=False)
        want = {(rid, row) for m, _, rid, n in expected if m == model for row in range(n)}
        keys = list(zip(df["request_id"], df["row"], strict=True))
        assert len(keys) == len(want) and set(keys) == want  # each row exactly once
        assert df["timestamp_ms"].is_monotonic_increasing
        versions = {rid: v for m, v, rid, _ in expected if m == model}
        assert all(df["model_version"] == df["request_id"].map(versions))
        # values round-trip: x encodes the thread, request and row; proba is a list per row
        thread = df["request_id"].str.extract(r"t(\d+)-r(\d+)").astype(int)
        assert list(df["input.x"]) == list(thread[0] * 100_000 + thread[1] * 10 + df["row"])
        assert list(df["output.predict"]) == list(df["input.x"] % 2)
        assert list(df["latency_ms"]) == list(thread[1].astype(float))
        assert all(list(p) == [0.25, 0.75] for p in df["output.predict_proba"])
        assert list(df["input.plan"]) == [["gold", "free", "pro"][r] for r in df["row"]]

    segments = [
        s
        for model in ("churn", "fraud")
        for s in store.list_prediction_segments(model, kind=SegmentKind.PREDICTIONS)
    ]
    assert sum(s.row_count for s in segments) == total_rows
    assert stats.segments_written == len(segments) > len(MODELS)


def test_segments_are_registered_with_their_row_counts_and_time_ranges(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with PredictionLogger(sqlite_store, artifacts, segment_rows=5, writer_id="pod-a:1") as logger:
        for i in range(12):
            logger.log(prediction(f"r{i}", ts=T0 + 100 * i))
        logger.log(prediction("v2", ts=T0 + 50, version="2"))
        logger.log_feedback(feedback("r3", 1, ts=T0 + 5000))

    segments = sqlite_store.list_prediction_segments("churn")
    described = [(s.kind, s.model_version, s.row_count, s.first_ms, s.last_ms) for s in segments]
    assert described == [
        (SegmentKind.PREDICTIONS, "1", 5, T0, T0 + 400),
        (SegmentKind.PREDICTIONS, "2", 1, T0 + 50, T0 + 50),
        (SegmentKind.PREDICTIONS, "1", 5, T0 + 500, T0 + 900),
        (SegmentKind.PREDICTIONS, "1", 2, T0 + 1000, T0 + 1100),
        (SegmentKind.FEEDBACK, "1", 1, T0 + 5000, T0 + 5000),
    ]
    for s in segments:
        table = pq.read_table(pa.BufferReader(artifacts.read_bytes(s.digest)))
        assert table.num_rows == s.row_count
        ts = table["timestamp_ms"].to_pylist()
        assert (min(ts), max(ts)) == (s.first_ms, s.last_ms)
        assert s.writer == "pod-a:1" and s.created_ms > 0


def test_a_full_queue_refuses_entries_without_blocking(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger = PredictionLogger(sqlite_store, artifacts, max_queue=3)  # writer not started
    accepted = [logger.log(prediction(f"r{i}")) for i in range(10)]
    accepted.append(logger.log_feedback(feedback("r0", 1)))
    assert accepted == [True] * 3 + [False] * 8
    stats = logger.stats()
    assert (stats.dropped_entries, stats.queue_depth, stats.logged_rows) == (8, 3, 0)

    logger.close()  # a logger that never started writes what it queued, in the caller
    df = read_predictions(sqlite_store, artifacts, "churn", with_feedback=False)
    assert list(df["request_id"]) == ["r0", "r1", "r2"]
    assert logger.stats().logged_rows == 3


def test_a_closed_logger_refuses_and_counts_entries(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger = PredictionLogger(sqlite_store, artifacts)
    logger.start()
    logger.close()
    logger.close()  # idempotent
    assert logger.log(prediction("late")) is False
    assert logger.stats().dropped_entries == 1
    with pytest.raises(InvalidState, match="closed"):
        logger.start()


def test_flush_writes_and_registers_everything_logged_before_it(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger = PredictionLogger(sqlite_store, artifacts, flush_interval_s=3600)
    logger.start()
    try:
        for i in range(20):
            logger.log(prediction(f"r{i}", ts=T0 + i))
        logger.log_feedback(feedback("r4", 0))
        logger.flush()
        assert logger.stats().logged_rows == 21
        assert len(read_predictions(sqlite_store, artifacts, "churn")) == 20
        assert list(read_feedback(sqlite_store, artifacts, "churn")["request_id"]) == ["r4"]
    finally:
        logger.close()


def test_a_group_is_written_once_its_first_entry_waited_flush_interval(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    logger = PredictionLogger(sqlite_store, artifacts, flush_interval_s=0.05)
    logger.start()
    try:
        logger.log(prediction("r0"))
        deadline = time.monotonic() + 30
        while not sqlite_store.list_prediction_segments("churn"):  # no flush() called
            assert time.monotonic() < deadline, "the segment was never written"
            time.sleep(0.01)
        # the writer counts the segment just after registering it: wait for the count too
        while logger.stats().segments_written == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert logger.stats().segments_written == 1
    finally:
        logger.close()


def test_write_failures_are_counted_and_the_logger_keeps_going(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the artifact root's parent should be")
    artifacts = ArtifactStore(str(blocker / "artifacts"))  # cannot be created: writes fail
    logger = PredictionLogger(sqlite_store, artifacts, retries=1, flush_interval_s=3600)
    logger.start()
    try:
        logger.log(prediction("lost"))
        logger.flush()
        stats = logger.stats()
        assert (stats.write_errors, stats.segments_written, stats.logged_rows) == (1, 0, 0)
        assert sqlite_store.list_prediction_segments("churn") == []  # never registered

        blocker.unlink()  # the storage recovers
        blocker.mkdir()
        assert logger.log(prediction("kept"))
        logger.flush()
        stats = logger.stats()
        assert (stats.write_errors, stats.segments_written, stats.logged_rows) == (1, 1, 1)
        df = read_predictions(sqlite_store, artifacts, "churn")
        assert list(df["request_id"]) == ["kept"]
    finally:
        logger.close()


def test_an_entry_that_cannot_become_rows_is_counted_and_spares_the_others(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    with PredictionLogger(sqlite_store, artifacts) as logger:
        logger.log(prediction("bad", outputs={"predict": np.array([1, 0, 1])}))  # 3 rows for 1
        logger.log(prediction("", model=""))  # no model name
        logger.log(prediction("good"))
    stats = logger.stats()
    assert (stats.invalid_entries, stats.logged_rows, stats.write_errors) == (2, 1, 0)
    df = read_predictions(sqlite_store, artifacts, "churn")
    assert list(df["request_id"]) == ["good"]


def test_from_client_logs_into_the_clients_stores(tmp_path: Path) -> None:
    with loopml.Client(
        f"sqlite:///{tmp_path / 'c.db'}", artifact_uri=str(tmp_path / "a")
    ) as client:
        with PredictionLogger.from_client(client, segment_rows=10) as logger:
            logger.log(prediction("r0"))
        df = read_predictions(client.store, client.artifact_store(), "churn")
    assert list(df["request_id"]) == ["r0"]
    assert (tmp_path / "a").is_dir()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"max_queue": 0}, "invalid max_queue 0: must be a whole number >= 1"),
        ({"segment_rows": 2.5}, "invalid segment_rows 2.5"),
        ({"flush_interval_s": 0}, "invalid flush_interval_s 0: must be a number of seconds > 0"),
        ({"retries": -1}, "invalid retries -1: must be a whole number >= 0"),
        ({"writer_id": ""}, "invalid writer_id ''"),
    ],
)
def test_bad_options_are_refused_with_the_valid_range(
    sqlite_store: SqlStore, artifacts: ArtifactStore, option: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        PredictionLogger(sqlite_store, artifacts, **option)  # type: ignore[arg-type]


def test_flush_and_close_do_not_start_a_thread_the_caller_did_not_start(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    before = Counter(t.name for t in threading.enumerate())
    logger = PredictionLogger(sqlite_store, artifacts)
    logger.log(prediction("r0"))
    logger.flush()
    assert (
        Counter(t.name for t in threading.enumerate())["loopml-prediction-log"]
        == before["loopml-prediction-log"]
    )
    assert logger.stats().logged_rows == 1
    logger.close()


def test_array_entries_are_stacked_and_a_bad_one_loses_no_other(
    sqlite_store: SqlStore, artifacts: ArtifactStore
) -> None:
    """The server's traffic (2-D arrays of one width) goes through the stacked path; an entry
    that cannot be logged is refused alone, its neighbours in the same batch are kept."""
    names = ("a", "b", "c")

    def entry(i: int, timestamp: object) -> PredictionEntry:
        rows = np.full((2, 3), float(i))
        return PredictionEntry(
            request_id=f"r{i}",
            model_name="m",
            model_version="1",
            role="primary",
            timestamp_ms=timestamp,  # type: ignore[arg-type]
            latency_ms=0.5,
            inputs=rows,
            outputs={"predict": np.array([i, i]), "predict_proba": np.full((2, 2), 0.5)},
            protocol="predict",
            input_names=names,
        )

    logger = PredictionLogger(sqlite_store, artifacts)  # not started: the caller drains
    for i in range(6):
        assert logger.log(entry(i, "not a time" if i == 3 else T0 + i))
    logger.close()
    stats = logger.stats()
    assert (stats.logged_rows, stats.invalid_entries, stats.write_errors) == (10, 1, 0)
    df = read_predictions(sqlite_store, artifacts, "m", with_feedback=False)
    assert sorted(set(df["request_id"])) == ["r0", "r1", "r2", "r4", "r5"]
    assert df["input.b"].tolist() == [float(int(r[1])) for r in df["request_id"]]
    assert [list(p) for p in df["output.predict_proba"]][:1] == [[0.5, 0.5]]
