"""The ``onnx`` target: convert a model to ONNX and prove the conversion gives the same answers.

scikit-learn estimators and pipelines are converted with skl2onnx (one float32 input of shape
``[None, n_features]``; classifiers output plain ``label`` and ``probabilities`` tensors, no
ZipMap); PyTorch modules with ``torch.onnx.export``. The result is a new model folder with the
``onnx`` flavor, served by onnxruntime.

Parity is then checked on the model's input example and on optional evaluation data: each
method both models have is called on the same input; labels must match exactly and float
outputs (probabilities, regression values) may differ by at most ``atol``. The numbers go into
``parity.json`` in the new folder and into the build result; a conversion out of tolerance is
refused with :class:`~loopml.errors.InvalidState`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument, InvalidState
from loopml.packaging.model_folder import ModelFolder
from loopml.packaging.parity import ParityReport, compare_outputs

__all__ = ["CONVERTIBLE_FLAVORS", "DEFAULT_ATOL", "PARITY_FILE", "write_onnx_model"]

CONVERTIBLE_FLAVORS = ("sklearn", "pytorch")
DEFAULT_ATOL = 1e-5
PARITY_FILE = "parity.json"
_TORCH_OPSET = 17
_COMPARED = ("predict", "predict_proba")


def write_onnx_model(
    model: ModelFolder,
    out: Path,
    *,
    atol: float = DEFAULT_ATOL,
    eval_data: Any = None,
    opset: int | None = None,
) -> dict[str, object]:
    """Convert ``model`` into the empty folder ``out`` and check parity; returns the numbers."""
    from loopml.models import load_model, save_model

    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or not atol >= 0:
        raise InvalidArgument(f"atol must be a number of at least 0, got {atol!r}")
    if model.flavor not in CONVERTIBLE_FLAVORS:
        raise InvalidArgument(
            f"cannot convert a {model.flavor!r} model to ONNX; convertible flavors are "
            f"{', '.join(CONVERTIBLE_FLAVORS)}",
            flavor=model.flavor,
            supported=list(CONVERTIBLE_FLAVORS),
        )
    original = load_model(str(model.path))
    example = _example_input(original.input_example)
    if example is None:
        raise InvalidArgument(
            f"the {model.flavor} model in {str(model.path)!r} has no input example; ONNX "
            "conversion needs one to fix the input shape and to check parity: log the model "
            "with input_example="
        )
    if model.flavor == "sklearn":
        converted = _from_sklearn(original.native, example, opset)
    else:
        converted = _from_torch(original.native, example, opset)

    save_model(converted, out, flavor="onnx", input_example=example)
    onnx_predictor = load_model(str(out))

    data_sets: list[tuple[str, Any]] = [("input_example", example)]
    if eval_data is not None:
        data_sets.append(("eval_data", _read_eval_data(eval_data)))
    report = _check_parity(original, onnx_predictor, data_sets, atol=float(atol))
    (out / PARITY_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", "utf-8")
    if not report.ok:
        raise InvalidState(_failure_message(model.flavor, report), parity=report.to_dict())
    return {
        "source_flavor": model.flavor,
        "atol": report.atol,
        "max_abs_diff": report.max_abs_diff,
        "parity": report.to_dict(),
    }


# -- converters ------------------------------------------------------------------------------
def _from_sklearn(estimator: Any, example: Any, opset: int | None) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    n_features = int(getattr(estimator, "n_features_in_", 0) or _width(example))
    options: dict[str, Any] = {"zipmap": False} if is_classifier(estimator) else {}
    try:
        return convert_sklearn(
            estimator,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options or None,
            target_opset=opset,
        )
    except Exception as exc:  # skl2onnx raises bare RuntimeErrors for unsupported models
        raise InvalidArgument(
            f"skl2onnx cannot convert this {type(estimator).__name__}: {exc}",
            flavor="sklearn",
        ) from None


def _from_torch(module: Any, example: Any, opset: int | None) -> Any:
    import tempfile

    import numpy as np
    import onnx
    import torch

    sample = torch.from_numpy(np.asarray(example, dtype=np.float32))
    with tempfile.TemporaryDirectory(prefix="loopml-onnx-") as scratch:
        file = Path(scratch) / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    (sample,),
                    file,
                    dynamo=False,  # the TorchScript exporter needs no extra packages
                    # The flavor loaded it in eval mode; a torch.export module cannot switch.
                    training=torch.onnx.TrainingMode.PRESERVE,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                    opset_version=opset or _TORCH_OPSET,
                )
        except Exception as exc:
            raise InvalidArgument(
                f"torch.onnx.export cannot convert this {type(module).__name__}: {exc}",
                flavor="pytorch",
            ) from None
        return onnx.load(str(file))


# -- parity ----------------------------------------------------------------------------------
def _check_parity(
    original: Any, converted: Any, data_sets: list[tuple[str, Any]], *, atol: float
) -> ParityReport:
    methods = [m for m in _COMPARED if m in original.methods and m in converted.methods]
    # A classifier's predictions are labels: equal or not. A regressor's are floats.
    labels = "predict_proba" in original.methods
    checks = []
    for data_name, data in data_sets:
        for method in methods:
            checks.append(
                compare_outputs(
                    original.call(method, data),
                    converted.call(method, data),
                    method=method,
                    data=data_name,
                    atol=atol,
                    exact=labels and method == "predict",
                )
            )
    return ParityReport(atol=atol, checks=tuple(checks))


def _failure_message(flavor: str, report: ParityReport) -> str:
    parts = []
    for check in report.failures():
        if check.exact:
            parts.append(
                f"{check.method} on {check.data}: {check.mismatches} of {check.rows} labels differ"
            )
        else:
            parts.append(
                f"{check.method} on {check.data}: max abs difference {check.max_abs_diff:.3g} "
                f"> atol {report.atol:g} ({check.mismatches} values over)"
            )
    return (
        f"the ONNX conversion of the {flavor} model does not match it (max abs difference "
        f"{report.max_abs_diff:.3g}, tolerance atol={report.atol:g}): {'; '.join(parts)}. "
        "Check the model in float32, or pass a larger atol if the difference is acceptable"
    )


# -- data ------------------------------------------------------------------------------------
def _example_input(example: Any) -> Any:
    """The stored example (JSON records or rows) as a DataFrame or a float array."""
    if example is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(example, list) and example and all(isinstance(r, dict) for r in example):
        return pd.DataFrame.from_records(example)
    if isinstance(example, dict):
        return pd.DataFrame(example)
    return np.asarray(example)


def _width(example: Any) -> int:
    shape = getattr(example, "shape", None)
    if shape is None or len(shape) != 2:
        raise InvalidArgument(
            f"cannot tell the number of features from an input example of shape {shape}; "
            "give a 2-D example (rows of features)"
        )
    return int(shape[1])


def _read_eval_data(data: Any) -> Any:
    """Evaluation data in memory, or read from a ``.csv``, ``.json`` (records) or ``.parquet``."""
    if not isinstance(data, (str, os.PathLike)):
        return data
    import pandas as pd

    path = Path(data)
    if not path.is_file():
        raise InvalidArgument(f"eval_data {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix == ".json":
        return pd.read_json(path, orient="records")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise InvalidArgument(
        f"eval_data {str(path)!r} has suffix {suffix!r}; give a .csv, .json (records) or "
        ".parquet file, or the data itself"
    )
