"""The request parsers and response conversion of the scoring routes, as plain functions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidArgument
from loopml.models.enforce import Table
from loopml.serving import protocol


def test_media_type() -> None:
    assert protocol.media_type_of("Application/JSON; charset=utf-8") == "application/json"
    assert protocol.media_type_of(None) == "application/json"
    assert protocol.media_type_of("text/csv") == "text/csv"


def test_dataframe_split_keeps_column_order_and_index() -> None:
    frame = protocol.parse_invocation(
        {"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2], [3, 4]], "index": [7, 8]}}
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["b", "a"] and list(frame.index) == [7, 8]


def test_instances_rows_are_an_array() -> None:
    array = protocol.parse_invocation({"instances": [[1.0, 2.0], [3.0, 4.0]]})
    assert isinstance(array, np.ndarray) and array.shape == (2, 2)


def test_inputs_columns_are_a_frame() -> None:
    frame = protocol.parse_invocation({"inputs": {"x": [1, 2], "y": ["a", "b"]}})
    assert isinstance(frame, pd.DataFrame) and frame.shape == (2, 2)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "got none of them"),
        ({"inputs": {"x": [1, 2], "y": [1]}}, "equal length"),
        ({"instances": []}, "non-empty"),
        ({"dataframe_split": [[1]]}, "'columns' and 'data'"),
        ({"dataframe_split": {"columns": "x", "data": [[1]]}}, "list of names"),
    ],
)
def test_invalid_invocations(payload: object, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        protocol.parse_invocation(payload)


def test_records_with_the_same_keys_become_a_table_without_pandas() -> None:
    assert protocol.parse_records([{"x": 1, "y": 2}]) == Table(("x", "y"), [[1, 2]])
    assert protocol.parse_records({"records": [{"x": 1}, {"x": 2}]}) == Table(("x",), [[1], [2]])
    # different keys per record: a DataFrame with the union of the columns
    mixed = protocol.parse_records([{"x": 1}, {"y": 2}])
    assert isinstance(mixed, pd.DataFrame) and list(mixed.columns) == ["x", "y"]
    split = protocol.parse_invocation({"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}})
    assert split == Table(("a",), [[1], [2]])
    with pytest.raises(InvalidArgument, match="'extra'"):
        protocol.parse_records({"records": [{"x": 1}], "extra": 1})


def test_csv() -> None:
    frame = protocol.parse_csv(b"x,y\n1,2\n3,4\n")
    assert frame.to_dict("list") == {"x": [1, 3], "y": [2, 4]}
    with pytest.raises(InvalidArgument, match="empty"):
        protocol.parse_csv(b"  ")


def test_outputs_become_plain_json_values() -> None:
    assert protocol.to_json_values(np.array([1, 0, 1])) == [1, 0, 1]
    assert protocol.to_json_values(np.array([0.5, math.nan, math.inf])) == [0.5, None, None]
    assert protocol.to_json_values(pd.Series(["a", "b"])) == ["a", "b"]
    assert protocol.to_json_values(pd.DataFrame({"p": [0.1, 0.2]})) == [0.1, 0.2]
    table = pd.DataFrame({"label": ["a", "b"], "score": [0.9, math.nan]})
    assert protocol.to_json_values(table) == [
        {"label": "a", "score": 0.9},
        {"label": "b", "score": None},
    ]
    assert protocol.to_json_values([np.int64(3), np.float32(0.5)]) == [3, 0.5]
    assert protocol.dump_json({"a": np.arange(2)}) == b'{"a":[0,1]}'


@pytest.mark.parametrize(
    "output",
    [
        np.array([1, 0, 1]),
        np.array([[0.25, 0.75], [0.5, 0.5]]),
        np.array([[0.25, 0.75], [0.5, 0.5]])[:, ::-1],  # not contiguous
        np.array([0.5, math.nan, math.inf]),
        np.array([True, False]),
        np.array(["a", "b"], dtype=object),
    ],
)
def test_json_output_writes_the_same_json_as_plain_values(output: np.ndarray) -> None:
    assert protocol.dump_json(protocol.json_output(output)) == protocol.dump_json(
        protocol.to_json_values(output)
    )
