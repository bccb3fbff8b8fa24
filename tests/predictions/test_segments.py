"""The Parquet layout of prediction and feedback segments."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.core.prediction_log import SegmentKind
from loopml.errors import InvalidArgument, InvalidState
from loopml.predictions.segments import SegmentBuilder, decode, encode

from .conftest import T0, feedback, prediction


def _predictions(*entries: object) -> pa.Table:
    builder = SegmentBuilder(SegmentKind.PREDICTIONS)
    for e in entries:
        builder.add_prediction(e)  # type: ignore[arg-type]
    return decode(encode(builder.to_table()))


def test_prediction_rows_have_the_documented_columns_and_types() -> None:
    table = _predictions(
        prediction(
            "r1",
            inputs=pd.DataFrame({"age": [41, 52], "income": [5200.0, 7.5], "plan": ["a", "b"]}),
            outputs={
                "predict": np.array([1, 0]),
                "predict_proba": np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32),
            },
            latency_ms=3.25,
        )
    )
    schema = {f.name: str(f.type) for f in table.schema}
    assert schema == {
        "request_id": "string",
        "row": "int32",
        "timestamp_ms": "int64",
        "latency_ms": "double",
        "model_name": "dictionary<values=string, indices=int32, ordered=0>",
        "model_version": "dictionary<values=string, indices=int32, ordered=0>",
        "role": "dictionary<values=string, indices=int32, ordered=0>",
        "protocol": "dictionary<values=string, indices=int32, ordered=0>",
        "input.age": "int64",
        "input.income": "double",
        "input.plan": "string",
        "output.predict": "int64",
        "output.predict_proba": "list<element: double>",
    }
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"], r["timestamp_ms"], r["latency_ms"]) for r in rows] == [
        ("r1", 0, T0, 3.25),
        ("r1", 1, T0, 3.25),
    ]
    assert rows[1]["input.plan"] == "b" and rows[1]["model_name"] == "churn"
    proba = np.array([r["output.predict_proba"] for r in rows])
    np.testing.assert_allclose(proba, [[0.2, 0.8], [0.9, 0.1]], rtol=1e-6)


def test_arrays_without_names_become_numbered_input_columns() -> None:
    table = _predictions(
        prediction(
            "r1",
            inputs=np.array([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]]),
            outputs={"predict": np.array([0.1, 0.2])},
        )
    )
    assert table.column_names[8:] == ["input.0", "input.1", "input.2", "output.predict"]
    assert table["input.2"].to_pylist() == [3.0, 6.0]


def test_entries_with_different_columns_share_a_segment_with_nulls() -> None:
    table = _predictions(
        prediction("a", inputs={"x": np.array([1, 2])}, outputs={"predict": np.array([0, 1])}),
        prediction(
            "b", inputs={"y": np.array(["u"])}, outputs={"predict_proba": np.array([[1.0, 0.0]])}
        ),
        prediction("c", inputs={"x": np.array([3.5])}, outputs={"predict": np.array([1])}),
    )
    assert table["input.x"].to_pylist() == [1.0, 2.0, None, 3.5]  # int and float widen
    assert table["input.y"].to_pylist() == [None, None, "u", None]
    assert table["output.predict"].to_pylist() == [0, 1, None, 1]
    assert table["output.predict_proba"].to_pylist() == [None, None, [1.0, 0.0], None]
    assert table["request_id"].to_pylist() == ["a", "a", "b", "c"]
    assert table["row"].to_pylist() == [0, 1, 0, 0]


def test_segments_are_zstd_compressed_parquet() -> None:
    builder = SegmentBuilder(SegmentKind.PREDICTIONS)
    builder.add_prediction(prediction("r1"))
    metadata = pq.ParquetFile(io.BytesIO(encode(builder.to_table()))).metadata
    codecs = {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)}
    assert codecs == {"ZSTD"}


def test_feedback_keeps_the_type_of_its_ground_truth() -> None:
    numbers = SegmentBuilder(SegmentKind.FEEDBACK)
    numbers.add_feedback(feedback("r1", 1))  # a scalar: row 0
    numbers.add_feedback(feedback("r2", [0.5, 1.5], ts=T0 + 2000))  # one value per row
    table = decode(encode(numbers.to_table()))
    assert table.column_names == ["request_id", "row", "timestamp_ms", "ground_truth"]
    assert table.to_pylist() == [
        {"request_id": "r1", "row": 0, "timestamp_ms": T0 + 1000, "ground_truth": 1.0},
        {"request_id": "r2", "row": 0, "timestamp_ms": T0 + 2000, "ground_truth": 0.5},
        {"request_id": "r2", "row": 1, "timestamp_ms": T0 + 2000, "ground_truth": 1.5},
    ]
    assert (numbers.rows, numbers.first_ms, numbers.last_ms) == (3, T0 + 1000, T0 + 2000)

    labels = SegmentBuilder(SegmentKind.FEEDBACK)
    labels.add_feedback(feedback("r1", "churned"))
    labels.add_feedback(feedback("r2", ("stayed", "churned")))
    table = decode(encode(labels.to_table()))
    assert str(table.schema.field("ground_truth").type) == "string"
    assert table["ground_truth"].to_pylist() == ["churned", "stayed", "churned"]


def test_a_bad_entry_adds_nothing_to_the_segment() -> None:
    builder = SegmentBuilder(SegmentKind.PREDICTIONS)
    builder.add_prediction(prediction("ok"))
    with pytest.raises(InvalidArgument, match="output 'predict' has 2 rows but the request has 1"):
        builder.add_prediction(prediction("bad", outputs={"predict": np.array([1, 2])}))
    with pytest.raises(InvalidArgument, match="input columns have different lengths"):
        builder.add_prediction(prediction("bad", inputs={"a": [1, 2], "b": [1]}))
    with pytest.raises(InvalidArgument, match="invalid timestamp_ms 'soon'"):
        builder.add_prediction(prediction("bad", ts="soon"))  # type: ignore[arg-type]
    assert builder.rows == 1
    assert builder.to_table()["request_id"].to_pylist() == ["ok"]


def test_a_segment_from_a_newer_format_is_refused() -> None:
    table = pa.table({"request_id": ["r1"]}).replace_schema_metadata(
        {b"loopml.prediction_log.version": b"99"}
    )
    with pytest.raises(InvalidState, match="format version 99; this loopml reads up to version 1"):
        decode(encode(table), digest="abc")
