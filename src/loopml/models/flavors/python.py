"""Any Python object with a ``predict`` method, pickled (with cloudpickle when installed).

Modules the object's class needs are shipped with ``code_paths=[...]``: they are copied into
the model's ``code/`` folder, which is put on ``sys.path`` before the object is unpickled.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidArgument
from loopml.models.flavor import Flavor

_FILE = "model.pkl"
_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


class PythonFlavor(Flavor):
    """A custom model: any object with a callable ``predict``."""

    name: ClassVar[str] = "python"
    packages: ClassVar[tuple[str, ...]] = ("cloudpickle", "numpy")

    def accepts(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        serializer = "cloudpickle" if _has_cloudpickle() else "pickle"
        with open(path / _FILE, "wb") as f:
            if serializer == "cloudpickle":
                import cloudpickle

                cloudpickle.dump(model, f)
            else:
                pickle.dump(model, f)
        return {"file": _FILE, "serializer": serializer}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        serializer = config.get("serializer", "pickle")
        if serializer == "cloudpickle" and not _has_cloudpickle():
            raise InvalidArgument(
                f"the model in {str(path)!r} was saved with cloudpickle, which is not installed: "
                "pip install cloudpickle (see the model's requirements.txt)"
            )
        with open(path / str(config.get("file", _FILE)), "rb") as f:
            return pickle.load(f)  # cloudpickle output is read by pickle itself

    def methods(self, model: Any) -> tuple[str, ...]:
        return tuple(m for m in _METHODS if callable(getattr(model, m, None)))

    def requirements(self, model: Any) -> tuple[str, ...]:
        return self.packages if _has_cloudpickle() else ("numpy",)

    def takes_dataframe(self, model: Any) -> bool:
        return True  # a custom model given a DataFrame example gets DataFrames

    def predict(self, model: Any, data: Any, method: str) -> Any:
        return getattr(model, method)(data)


def _has_cloudpickle() -> bool:
    return importlib.util.find_spec("cloudpickle") is not None
