"""scikit-learn models get a double-precision ONNX twin when it is faithful, and use it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from loopml.models import load_model, save_model
from loopml.models.flavors._sklearn_onnx import TwinModel


def _twin_config(folder: Path) -> dict[str, object]:
    meta = json.loads((folder / "loopml-model.json").read_text())
    return dict(meta["flavor_config"]["onnx_twin"])


@pytest.fixture(scope="module")
def forest() -> tuple[Pipeline, object]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("rf", RandomForestClassifier(n_estimators=30, random_state=0)),
        ]
    ).fit(X, y)
    return model, X


def test_classifier_twin_matches_scikit_learn_on_every_row(
    forest: tuple[Pipeline, object], tmp_path: Path
) -> None:
    model, X = forest
    save_model(model, tmp_path / "m", input_example=X[:5])  # type: ignore[index]
    twin = _twin_config(tmp_path / "m")
    assert twin["file"] == "model.onnx"
    assert float(twin["max_abs_diff"]) <= 1e-7  # type: ignore[arg-type]
    predictor = load_model(tmp_path / "m")
    assert isinstance(predictor._native, TwinModel)
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
    np.testing.assert_allclose(predictor.predict_proba(X), model.predict_proba(X), atol=1e-7)
    assert predictor.native.__class__ is Pipeline  # the estimator, loaded on demand


def test_regressor_twin_keeps_the_output_shape(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    save_model(model, tmp_path / "m", input_example=X[:5])
    predictor = load_model(tmp_path / "m")
    got = predictor.predict(X)
    assert got.shape == (len(X),)
    np.testing.assert_allclose(got, model.predict(X), atol=1e-7)


def test_fast_path_can_be_turned_off(forest: tuple[Pipeline, object], tmp_path: Path) -> None:
    model, X = forest
    save_model(model, tmp_path / "m", input_example=X[:5])  # type: ignore[index]
    predictor = load_model(tmp_path / "m", onnx_fast_path=False)
    assert predictor._native.__class__ is Pipeline
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))


def test_a_model_that_does_not_convert_has_no_twin_and_still_works(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = Pipeline([("f", FunctionTransformer(np.log1p)), ("r", Ridge())]).fit(X + 1, y)
    save_model(model, tmp_path / "m", input_example=X[:5] + 1)
    assert "skipped" in _twin_config(tmp_path / "m")
    assert not (tmp_path / "m" / "model.onnx").exists()
    predictor = load_model(tmp_path / "m")
    np.testing.assert_allclose(predictor.predict(X + 1), model.predict(X + 1))
