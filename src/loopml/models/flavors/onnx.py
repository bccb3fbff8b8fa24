"""ONNX models (an ``onnx.ModelProto``, or the path of a ``.onnx`` file), run with
onnxruntime on the CPU.

Outputs named as skl2onnx names them map to methods: ``label`` (or ``variable``) is
``predict``, ``probabilities`` is ``predict_proba``; any other model's first output is
``predict``. The session uses one intra-op thread unless ``intra_op_threads`` in the flavor
config says otherwise (serving runs several models and requests side by side).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidArgument
from loopml.models.flavor import Flavor, mro_modules

_FILE = "model.onnx"
_PREDICT_NAMES = ("label", "output_label", "variable", "predictions", "output")
_PROBA_NAMES = ("probabilities", "output_probability", "probability")
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
}


class OnnxFlavor(Flavor):
    """An ONNX model, served by onnxruntime."""

    name: ClassVar[str] = "onnx"
    packages: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx", "numpy")

    def accepts(self, model: Any) -> bool:
        if isinstance(model, (str, os.PathLike)):
            return str(model).endswith(".onnx") and Path(model).is_file()
        if "onnx" not in mro_modules(model):
            return False
        import onnx

        return isinstance(model, onnx.ModelProto)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        if isinstance(model, (str, os.PathLike)):
            shutil.copyfile(model, path / _FILE)
        else:
            (path / _FILE).write_bytes(model.SerializeToString())
        return {"file": _FILE, "intra_op_threads": 1}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(config.get("intra_op_threads", 1))
        options.inter_op_num_threads = 1
        return ort.InferenceSession(
            str(path / str(config.get("file", _FILE))),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def methods(self, model: Any) -> tuple[str, ...]:
        names = _output_names(model)
        return ("predict", "predict_proba") if _proba_output(names) else ("predict",)

    def takes_dataframe(self, model: Any) -> bool:
        return False

    def predict(self, model: Any, data: Any, method: str) -> Any:
        import numpy as np

        session = model if hasattr(model, "get_inputs") else _session(model)
        inputs = session.get_inputs()
        if isinstance(data, dict):
            feed = {i.name: _typed(np.asarray(data[i.name]), i.type) for i in inputs}
        elif len(inputs) == 1:
            feed = {inputs[0].name: _typed(np.asarray(data), inputs[0].type)}
        else:  # one input per column, as skl2onnx makes for DataFrames
            array = np.asarray(data)
            if array.ndim != 2 or array.shape[1] != len(inputs):
                names = [i.name for i in inputs]
                raise InvalidArgument(
                    f"this ONNX model takes {len(inputs)} inputs ({names}); pass a dict of "
                    f"arrays or an array of shape (n, {len(inputs)}), got shape {array.shape}"
                )
            feed = {i.name: _typed(array[:, [k]], i.type) for k, i in enumerate(inputs)}
        names = [o.name for o in session.get_outputs()]
        wanted = _proba_output(names) if method == "predict_proba" else _predict_output(names)
        if wanted is None:
            raise InvalidArgument(
                f"this ONNX model has no output for {method!r}; its outputs are {names}"
            )
        (result,) = session.run([wanted], feed)
        if isinstance(result, list) and result and isinstance(result[0], dict):
            keys = list(result[0])  # a ZipMap: one {class: probability} per row
            return np.array([[row[k] for k in keys] for row in result])
        return result


def _session(model: Any) -> Any:
    """A session for a ModelProto or a path (when called before the model is saved)."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _output_names(model: Any) -> list[str]:
    if hasattr(model, "get_outputs"):  # an onnxruntime session
        return [o.name for o in model.get_outputs()]
    if isinstance(model, (str, os.PathLike)):
        import onnx

        model = onnx.load(str(model), load_external_data=False)
    return [o.name for o in model.graph.output]


def _typed(array: Any, onnx_type: str) -> Any:
    dtype = _ORT_TYPES.get(onnx_type)
    if dtype is None or array.dtype == dtype:
        return array
    return array.astype(dtype)


def _predict_output(names: list[str]) -> str | None:
    for name in _PREDICT_NAMES:
        if name in names:
            return name
    proba = _proba_output(names)
    others = [n for n in names if n != proba]
    return others[0] if others else (names[0] if names else None)


def _proba_output(names: list[str]) -> str | None:
    for name in _PROBA_NAMES:
        if name in names:
            return name
    return None
