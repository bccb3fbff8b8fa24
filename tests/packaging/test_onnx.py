"""The ``onnx`` target: conversions checked for parity, and refusals that say why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.errors import InvalidArgument, InvalidState
from loopml.models import load_model, save_model
from loopml.packaging.build import build
from loopml.packaging.onnx import PARITY_FILE

from .conftest import SavedModel


def test_random_forest_pipeline_parity(forest: SavedModel, tmp_path: Path) -> None:
    eval_csv = tmp_path / "eval.csv"
    forest.X.sample(200, random_state=3).to_csv(eval_csv, index=False)
    result = build(forest.path, "onnx", tmp_path / "onnx", eval_data=eval_csv)

    assert {"model.onnx", "loopml-model.json", PARITY_FILE} <= set(result.files)
    assert result.details["source_flavor"] == "sklearn"
    assert result.details["atol"] == 1e-5
    assert 0 <= result.details["max_abs_diff"] <= 1e-5
    parity = json.loads((result.path / PARITY_FILE).read_text())
    assert parity["ok"] is True
    assert parity["max_abs_diff"] == result.details["max_abs_diff"]
    checked = {(c["method"], c["data"], c["comparison"]) for c in parity["checks"]}
    assert checked == {
        ("predict", "input_example", "exact"),
        ("predict_proba", "input_example", "atol"),
        ("predict", "eval_data", "exact"),
        ("predict_proba", "eval_data", "atol"),
    }
    assert {c["rows"] for c in parity["checks"] if c["data"] == "eval_data"} == {200}

    converted = load_model(str(result.path))
    assert converted.flavor == "onnx"
    assert set(converted.methods) == {"predict", "predict_proba"}
    np.testing.assert_array_equal(converted.predict(forest.X), forest.native.predict(forest.X))
    np.testing.assert_allclose(
        converted.predict_proba(forest.X), forest.native.predict_proba(forest.X), atol=1e-5
    )


def test_parity_failure_is_refused_naming_the_difference(
    forest: SavedModel, tmp_path: Path
) -> None:
    out = tmp_path / "onnx"
    # float32 inference differs from float64 by ~1e-7, so a zero tolerance must fail.
    with pytest.raises(InvalidState) as info:
        build(forest.path, "onnx", out, atol=0.0, eval_data=forest.X)
    message = info.value.message
    assert "max abs difference" in message and "atol=0" in message
    assert "predict_proba on" in message
    assert info.value.details["parity"]["ok"] is False
    assert info.value.details["parity"]["max_abs_diff"] > 0
    assert not out.exists()  # nothing half-built is left behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


class Doubler:
    """A custom python model: no converter knows it."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data, dtype=float).sum(axis=1) * 2


def test_an_unconvertible_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    save_model(Doubler(), folder, input_example=np.ones((2, 3)))
    out = tmp_path / "onnx"
    with pytest.raises(InvalidArgument) as info:
        build(folder, "onnx", out)
    assert "'python'" in info.value.message
    assert "sklearn, pytorch" in info.value.message
    assert info.value.details["supported"] == ["sklearn", "pytorch"]
    assert not out.exists()


def test_a_model_without_input_example_is_refused(forest: SavedModel, tmp_path: Path) -> None:
    folder = tmp_path / "no-example"
    save_model(forest.native, folder)
    with pytest.raises(InvalidArgument, match="no input example"):
        build(folder, "onnx", tmp_path / "onnx")


@pytest.mark.parametrize("atol", [-1.0, "small"])
def test_bad_tolerance(forest: SavedModel, tmp_path: Path, atol: Any) -> None:
    with pytest.raises(InvalidArgument, match="atol must be"):
        build(forest.path, "onnx", tmp_path / "onnx", atol=atol)


def test_torch_module_parity(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.Softmax(dim=1)
    )
    rng = np.random.default_rng(0)
    folder = tmp_path / "torch"
    save_model(module, folder, input_example=rng.normal(size=(8, 6)).astype(np.float32))
    eval_data = rng.normal(size=(300, 6)).astype(np.float32)
    result = build(folder, "onnx", tmp_path / "onnx", eval_data=eval_data)

    assert result.details["source_flavor"] == "pytorch"
    assert result.details["max_abs_diff"] <= 1e-5
    converted = load_model(str(result.path))
    with torch.no_grad():
        expected = module(torch.from_numpy(eval_data)).numpy()
    np.testing.assert_allclose(converted.predict(eval_data), expected, atol=1e-5)
    # A batch size the export never saw: the batch dimension is dynamic.
    assert converted.predict(eval_data[:1]).shape == (1, 3)


def test_torch_export_programs_convert_too() -> None:
    """The pytorch flavor may load a ``torch.export`` program, whose module cannot change
    training mode; the converter must not try to."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from loopml.packaging.onnx import _from_torch

    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    sample = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    program = torch.export.export(
        module.eval(), (torch.from_numpy(sample),), dynamic_shapes=({0: torch.export.Dim.AUTO},)
    )
    exported = program.module()
    converted = _from_torch(exported, sample, None)
    session = ort.InferenceSession(
        converted.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {"input": sample})
    with torch.no_grad():
        want = exported(torch.from_numpy(sample)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
