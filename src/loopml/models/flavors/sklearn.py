"""scikit-learn estimators and pipelines, saved with joblib."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from loopml.models.flavor import Flavor
from loopml.models.flavors._sklearn_onnx import TwinModel, make_twin

_FILE = "model.joblib"
_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


class SklearnFlavor(Flavor):
    """Any scikit-learn estimator (``BaseEstimator``), a Pipeline included."""

    name: ClassVar[str] = "sklearn"
    packages: ClassVar[tuple[str, ...]] = ("scikit-learn", "numpy", "scipy", "joblib")

    def accepts(self, model: Any) -> bool:
        if "sklearn" not in sys.modules:  # a scikit-learn object implies the module is loaded
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        import joblib

        joblib.dump(model, path / _FILE)
        config: dict[str, Any] = {
            "file": _FILE,
            "serializer": "joblib",
            "class": _class_name(model),
        }
        if input_example is not None:
            config["onnx_twin"] = make_twin(model, path, input_example)
        return config

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        def load_estimator() -> Any:
            import joblib

            return joblib.load(path / str(config.get("file", _FILE)))

        twin = config.get("onnx_twin") or {}
        if "file" in twin and config.get("use_onnx_twin", True):
            try:
                return TwinModel(path, str(twin["file"]), load_estimator)
            except ImportError:  # onnxruntime is not installed here: use the estimator
                pass
        return load_estimator()

    def unwrap(self, loaded: Any) -> Any:
        return loaded.estimator if isinstance(loaded, TwinModel) else loaded

    def runtime(self, loaded: Any) -> str:
        return "onnxruntime" if isinstance(loaded, TwinModel) else "sklearn"

    def takes_array(self, loaded: Any) -> bool:
        return isinstance(loaded, TwinModel)

    def methods(self, model: Any) -> tuple[str, ...]:
        return tuple(m for m in _METHODS if hasattr(model, m))

    def predict(self, model: Any, data: Any, method: str) -> Any:
        if isinstance(model, TwinModel):
            return model.call(method, data)
        return getattr(model, method)(data)


def _class_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"
