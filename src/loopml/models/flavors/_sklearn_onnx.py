"""The ONNX fast path of scikit-learn models: a double-precision ONNX twin, used when faithful.

When a scikit-learn model is saved with an input example and skl2onnx + onnxruntime are
installed, it is also converted to ONNX with a float64 input (float32 rounding would change
some probabilities by up to 1e-2; float64 keeps them within ~1e-8). The twin is kept only if
it gives the same labels and probabilities within :data:`ATOL` on the input example. Loading
such a model then needs neither scikit-learn nor SciPy (about 1.5 s of imports on a cold
start): ``predict``/``predict_proba`` run in ONNX Runtime, and the estimator itself is
unpickled only if it is asked for (``Predictor.native``) or for another method.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

FILE = "model.onnx"
ATOL = 1e-7
_OUTPUTS = {"predict": 0, "predict_proba": 1}


def make_twin(model: Any, path: Path, example: Any) -> dict[str, Any]:
    """Write ``model.onnx`` beside the estimator if it converts faithfully; return the config
    entry describing it (``{"file", "max_abs_diff", "rows"}``) or why there is none."""
    try:
        import numpy as np
        import onnxruntime  # noqa: F401 - the twin is useless without it
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType
        from sklearn.base import is_classifier
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not installed"}
    try:
        rows = np.asarray(example, dtype=np.float64)
        if rows.ndim != 2:
            return {"skipped": f"input example has {rows.ndim} dimensions, not 2"}
        classifier = is_classifier(model)
        proto = convert_sklearn(
            model,
            initial_types=[("input", DoubleTensorType([None, rows.shape[1]]))],
            options={"zipmap": False} if classifier else {},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        data = proto.SerializeToString()
        session = _session(data)
        outputs = session.run(None, {"input": rows})
        diffs = [_max_diff(np.asarray(model.predict(example)).ravel(), outputs[0].ravel())]
        if classifier and hasattr(model, "predict_proba"):
            if len(outputs) < 2:
                return {"skipped": "the ONNX model has no probabilities output"}
            diffs.append(_max_diff(np.asarray(model.predict_proba(example)), outputs[1]))
    except Exception as exc:  # any converter gap: the model simply has no fast path
        return {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
    if any(d is None for d in diffs):
        return {"skipped": "ONNX outputs differ from scikit-learn's in shape or labels"}
    diff = max(d for d in diffs if d is not None)
    if diff > ATOL:
        return {"skipped": f"ONNX outputs differ from scikit-learn's by {diff:.3g} (> {ATOL})"}
    (path / FILE).write_bytes(data)
    return {"file": FILE, "max_abs_diff": diff, "rows": int(rows.shape[0])}


def _max_diff(expected: Any, got: Any) -> float | None:
    import numpy as np

    if expected.shape != got.shape:
        return None
    if expected.dtype.kind in "fc" or got.dtype.kind in "fc":
        gap = np.abs(expected.astype(np.float64) - got.astype(np.float64))
        return float(np.max(gap, initial=0))
    return 0.0 if bool(np.all(expected == got)) else None


def _session(source: bytes | str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class TwinModel:
    """A scikit-learn model served by its ONNX twin, the estimator unpickled on demand."""

    def __init__(self, folder: Path, twin_file: str, load_estimator: Any) -> None:
        self._session = _session(str(folder / twin_file))
        self._load_estimator = load_estimator
        self._estimator: Any = None
        self._lock = threading.Lock()

    @property
    def estimator(self) -> Any:
        if self._estimator is None:
            with self._lock:
                if self._estimator is None:
                    self._estimator = self._load_estimator()
        return self._estimator

    def call(self, method: str, data: Any) -> Any:
        index = _OUTPUTS.get(method)
        if index is None:
            estimator = self.estimator
            names = getattr(estimator, "feature_names_in_", None)
            if names is not None and type(data).__name__ == "ndarray":
                import pandas as pd

                data = pd.DataFrame(data, columns=list(names))
            return getattr(estimator, method)(data)
        import numpy as np

        rows = np.asarray(data, dtype=np.float64)
        out = self._session.run(None, {"input": rows})[index]
        if index == 0 and out.ndim == 2 and out.shape[1] == 1:
            return out.ravel()  # regressors: (n, 1) in ONNX, (n,) in scikit-learn
        return out
