"""Signatures: inference from examples, and enforcement of what callers pass at predict time."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidArgument, InvalidState, NotFound
from loopml.models import (
    ColSpec,
    Predictor,
    Schema,
    Signature,
    TensorSpec,
    infer_signature,
    load_model,
    save_model,
)
from loopml.models.format import METADATA_FILE
from loopml.models.uri import ACCEPTED_FORMS, parse_model_uri

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    return X, y.to_numpy()


@pytest.fixture(scope="module")
def frame_model(
    iris: tuple[pd.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Predictor:
    """A pipeline fitted on a DataFrame; its example misses a petal_width value."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = iris
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(X, y)
    example = X.head(5).copy()
    example.loc[2, "petal_width"] = np.nan
    path = tmp_path_factory.mktemp("frame") / "m"
    save_model(model, path, input_example=example)
    return load_model(path)


@pytest.fixture(scope="module")
def array_model(
    iris: tuple[pd.DataFrame, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Predictor:
    """A model fitted on a float32 array (a tensor signature)."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    array = X.to_numpy(dtype=np.float32)
    model = LogisticRegression(max_iter=500).fit(array, y)
    path = tmp_path_factory.mktemp("array") / "m"
    save_model(model, path, input_example=array[:3])
    return load_model(path)


# -- inference -------------------------------------------------------------------------------
def test_dataframe_columns_get_their_types_and_missing_values_make_them_optional() -> None:
    frame = pd.DataFrame(
        {
            "d": [1.5, 2.5],
            "f": np.array([1.0, 2.0], dtype=np.float32),
            "l": [1, 2],
            "i": np.array([1, 2], dtype=np.int32),
            "b": [True, False],
            "s": ["x", "y"],
            "bin": [b"x", b"y"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "maybe": [1.0, None],
            "nullable": pd.array([1, None], dtype="Int64"),
            "cat": pd.Categorical(["a", "b"]),
        }
    )
    columns = infer_signature(frame).inputs.columns
    assert [(c.name, c.type, c.optional) for c in columns] == [
        ("d", "double", False),
        ("f", "float", False),
        ("l", "long", False),
        ("i", "integer", False),
        ("b", "boolean", False),
        ("s", "string", False),
        ("bin", "binary", False),
        ("t", "datetime", False),
        ("maybe", "double", True),
        ("nullable", "long", True),
        ("cat", "string", False),
    ]


def test_records_arrays_and_dicts_of_arrays() -> None:
    records = [{"a": 1, "b": "x"}, {"a": 2.5}, {"a": 3, "b": None}]
    assert infer_signature(records).inputs.columns == (
        ColSpec("a", "double"),
        ColSpec("b", "string", optional=True),
    )
    assert infer_signature({"a": 1, "t": dt.datetime(2024, 1, 1)}).inputs.columns == (
        ColSpec("a", "long"),
        ColSpec("t", "datetime"),
    )
    tensor = infer_signature(np.zeros((7, 3, 2), dtype=np.float32)).inputs
    assert tensor.tensors == (TensorSpec("float32", (-1, 3, 2)),)
    named = infer_signature({"ids": np.zeros((2, 5), dtype=np.int64), "mask": np.ones((2, 5))})
    assert named.inputs.tensors == (
        TensorSpec("int64", (-1, 5), "ids"),
        TensorSpec("float64", (-1, 5), "mask"),
    )
    output = infer_signature(np.zeros((2, 3)), np.array([1, 0])).outputs
    assert output == Schema(tensors=(TensorSpec("int64", (-1,)),))


def test_signature_round_trips_through_a_dict() -> None:
    signature = Signature(
        Schema(columns=(ColSpec("a", "double"), ColSpec("b", "string", optional=True))),
        Schema(tensors=(TensorSpec("float32", (-1, 2)),)),
    )
    data = json.loads(json.dumps(signature.to_dict()))
    assert Signature.from_dict(data) == signature


def test_bad_specs_are_refused_with_the_valid_choices() -> None:
    with pytest.raises(InvalidArgument, match=r"'decimal' for column 'a'.*double, float"):
        ColSpec("a", "decimal")
    with pytest.raises(InvalidArgument, match="mixes values of types"):
        infer_signature([{"a": 1}, {"a": "x"}])
    with pytest.raises(InvalidArgument, match="every value in the example is missing"):
        infer_signature([{"a": None}])


# -- enforcement -----------------------------------------------------------------------------
def test_dataframe_records_one_record_and_array_give_the_same_predictions(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    expected = frame_model.predict_proba(X)
    assert frame_model.metadata.input_format == "dataframe"
    np.testing.assert_allclose(frame_model.predict_proba(X.to_dict(orient="records")), expected)
    np.testing.assert_allclose(frame_model.predict_proba(X.to_numpy()), expected)
    np.testing.assert_allclose(frame_model.predict_proba(X.to_numpy().tolist()), expected)
    np.testing.assert_allclose(frame_model.predict_proba(X.iloc[7].to_dict()), expected[7:8])
    np.testing.assert_allclose(frame_model.predict_proba(X.to_dict(orient="list")), expected)


def test_column_order_does_not_matter_and_extra_columns_are_ignored(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    shuffled = X[list(reversed(COLUMNS))].assign(row_id=range(len(X)), note="x")
    np.testing.assert_allclose(frame_model.predict_proba(shuffled), frame_model.predict_proba(X))


def test_missing_required_column_names_it_its_type_and_the_columns_given(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    with pytest.raises(InvalidArgument) as caught:
        frame_model.predict(X.drop(columns=["sepal_width"]))
    message = str(caught.value)
    assert "missing required column 'sepal_width' (double)" in message
    assert "columns given: ['sepal_length', 'petal_length', 'petal_width']" in message
    assert caught.value.details["column"] == "sepal_width"


def test_optional_column_may_be_missing(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    (optional,) = [c for c in frame_model.signature.inputs.columns if c.optional]  # type: ignore[union-attr]
    assert optional.name == "petal_width"
    got = frame_model.predict(X.drop(columns=["petal_width"]))
    assert got.shape == (len(X),)
    records = [{k: v for k, v in r.items() if k != "petal_width"} for r in X.to_dict("records")]
    np.testing.assert_array_equal(frame_model.predict(records), got)


def test_wrong_type_names_the_column_the_expected_type_and_the_value(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    bad = X.head(3).astype({"petal_length": object})
    bad.loc[1, "petal_length"] = "long"
    with pytest.raises(InvalidArgument) as caught:
        frame_model.predict(bad)
    message = str(caught.value)
    assert "column 'petal_length' expects double" in message
    assert "'long'" in message and "row 1" in message
    with pytest.raises(
        InvalidArgument, match=r"'sepal_length' expects double, got datetime\.date\(2024, 1, 1\)"
    ):
        frame_model.predict([{**X.iloc[0].to_dict(), "sepal_length": dt.date(2024, 1, 1)}])


def test_safe_conversions_int_to_float_float32_and_numeric_text(
    frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    whole = X.round().astype("int64")
    expected = frame_model.predict_proba(whole.astype("float64"))
    np.testing.assert_allclose(frame_model.predict_proba(whole), expected)
    np.testing.assert_allclose(frame_model.predict_proba(whole.astype("int32")), expected)
    single = X.astype("float32")
    np.testing.assert_allclose(
        frame_model.predict_proba(single), frame_model.predict_proba(single.astype("float64"))
    )
    text = [{k: str(v) for k, v in r.items()} for r in whole.head(3).to_dict("records")]
    np.testing.assert_allclose(frame_model.predict_proba(text), expected[:3])


def test_wrong_shape_says_expected_and_got(
    array_model: Predictor, frame_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    with pytest.raises(InvalidArgument, match=r"expected \(n, 4\), got \(2, 3\)"):
        array_model.predict(np.zeros((2, 3)))
    with pytest.raises(InvalidArgument, match=r"4 columns .* shape \(n, 4\); got \(2, 5\)"):
        frame_model.predict(np.zeros((2, 5)))
    with pytest.raises(InvalidArgument, match="got records"):
        array_model.predict(X.head(2).to_dict("records"))


def test_tensor_input_from_array_list_and_dataframe_agree_and_float64_is_accepted(
    array_model: Predictor, iris: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, _ = iris
    signature = array_model.signature
    assert signature is not None
    assert signature.inputs.tensors == (TensorSpec("float32", (-1, 4)),)
    expected = array_model.predict(X.to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(array_model.predict(X.to_numpy()), expected)
    np.testing.assert_array_equal(array_model.predict(X.to_numpy().tolist()), expected)
    np.testing.assert_array_equal(array_model.predict(X), expected)
    with pytest.raises(InvalidArgument, match=r"expects float32 values, got 'x'"):
        array_model.predict(np.array([[1, 2, 3, "x"]], dtype=object))


def test_long_columns_take_whole_floats_but_not_fractions(tmp_path: Path) -> None:
    class Echo:
        def predict(self, frame: pd.DataFrame) -> Any:
            return frame["n"].to_numpy()

    save_model(Echo(), tmp_path / "m", input_example=pd.DataFrame({"n": [1, 2]}))
    model = load_model(tmp_path / "m")
    got = model.predict(pd.DataFrame({"n": [3.0, 4.0]}))
    assert got.dtype == np.int64 and got.tolist() == [3, 4]
    with pytest.raises(InvalidArgument, match=r"column 'n' expects long, got 2.5 .* row 1"):
        model.predict([{"n": 1}, {"n": 2.5}])


def test_a_method_the_model_lacks_is_an_invalid_state_listing_those_it_has(
    tmp_path: Path,
) -> None:
    class OnlyPredict:
        def predict(self, x: Any) -> Any:
            return np.zeros(len(x))

    save_model(OnlyPredict(), tmp_path / "m")
    model = load_model(tmp_path / "m")
    assert model.signature is None and model.methods == ("predict",)
    assert model.predict([[1, 2]]).tolist() == [0.0]
    with pytest.raises(InvalidState, match="no method 'predict_proba'; its methods are: predict"):
        model.predict_proba([[1, 2]])


# -- the folder format and URIs --------------------------------------------------------------
def test_model_folder_records_what_it_is(frame_model: Predictor) -> None:
    data = json.loads((frame_model.path / METADATA_FILE).read_text())
    assert data["format_version"] == 1
    assert data["flavor"] == "sklearn"
    assert data["input_example"] == "input_example.json"
    assert data["signature"]["inputs"]["type"] == "columns"
    assert data["run_id"] is None and data["datasets"] == []
    assert set(data) >= {
        "flavor_config", "methods", "requirements", "python_version", "loopml_version",
        "created_at", "git_commit", "git_dirty",
    }  # fmt: skip
    example = frame_model.input_example
    assert example[2]["petal_width"] is None and set(example[0]) == set(COLUMNS)


def test_newer_format_version_is_refused(frame_model: Predictor, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(frame_model.path, copy)
    data = json.loads((copy / METADATA_FILE).read_text())
    (copy / METADATA_FILE).write_text(json.dumps({**data, "format_version": 2}))
    with pytest.raises(InvalidState, match="format_version 2, newer than this loopml"):
        load_model(copy)


def test_save_refuses_a_non_empty_folder_and_load_a_non_model(tmp_path: Path) -> None:
    from loopml.errors import AlreadyExists

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(AlreadyExists, match="not an empty folder"):
        save_model(object(), tmp_path / "taken")
    with pytest.raises(NotFound, match="no model folder at"):
        load_model(tmp_path / "nothing")
    with pytest.raises(NotFound, match="not a loopml model folder"):
        load_model(tmp_path / "taken")
    with pytest.raises(InvalidArgument, match="no model flavor accepts"):
        save_model(object(), tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/model", "runs:/", "runs:/abc", "models:/", "models:/name", "models:/a/b/c",
     "models:/name/0", "models:/name@1bad"],
)  # fmt: skip
def test_bad_uris_are_refused_with_the_accepted_forms(uri: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_model_uri(uri)
    assert repr(uri) in str(caught.value)
    assert "runs:/<run_id>/<artifact path>" in str(caught.value)


def test_uri_parsing() -> None:
    assert parse_model_uri("runs:/abc/models/clf").artifact_path == "models/clf"
    assert parse_model_uri("models:/churn/3").version == 3
    assert parse_model_uri("models:/churn@champion").alias == "champion"
    latest = parse_model_uri("models:/churn/latest")
    assert (latest.name, latest.version, latest.alias) == ("churn", None, None)
    assert str(parse_model_uri("file:///tmp/m").path) == "/tmp/m"
    assert "models:/<name>@<alias>" in ACCEPTED_FORMS


def test_a_numeric_table_becomes_one_array_in_signature_order() -> None:
    from loopml.models.enforce import Table, enforce_signature
    from loopml.models.signature import ColSpec, Schema, Signature

    signature = Signature(Schema(columns=(ColSpec("a", "double"), ColSpec("b", "double"))))
    table = Table(("b", "extra", "a"), [[2.0, 9.0, 1.0], [4.0, 9.0, 3.0]])
    array = enforce_signature(table, signature, dataframe=False)
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    assert array.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    frame = enforce_signature(table, signature, dataframe=True)
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == [1.0, 3.0]
    # what the fast path cannot take goes the general way, with its errors
    with pytest.raises(InvalidArgument, match="missing required column 'a'"):
        enforce_signature(Table(("b",), [[1.0]]), signature, dataframe=False)
    with pytest.raises(InvalidArgument, match="'b'"):
        enforce_signature(Table(("a", "b"), [[1.0, "big"]]), signature, dataframe=False)
    positional = enforce_signature(Table(None, [[5.0, 6.0]]), signature, dataframe=False)
    assert positional.tolist() == [[5.0, 6.0]]
