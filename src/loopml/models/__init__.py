"""Models: save, log, register and load trained models of any flavor, called the same way.

    import loopml

    with loopml.start_run():
        logged = loopml.log_model(clf, input_example=X[:5])
    model = loopml.load_model(logged.uri)
    model.predict(X)

Nothing heavy is imported here: flavors load their libraries when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.models.api import LoggedModel, load_model, log_model, save_model
    from loopml.models.flavor import Flavor, available_flavors, get_flavor
    from loopml.models.format import ModelMetadata
    from loopml.models.predictor import Predictor
    from loopml.models.signature import (
        ColSpec,
        Schema,
        Signature,
        TensorSpec,
        infer_signature,
    )
    from loopml.models.uri import resolve_model_uri

_LAZY: dict[str, str] = {
    "ColSpec": "loopml.models.signature",
    "Flavor": "loopml.models.flavor",
    "LoggedModel": "loopml.models.api",
    "ModelMetadata": "loopml.models.format",
    "Predictor": "loopml.models.predictor",
    "Schema": "loopml.models.signature",
    "Signature": "loopml.models.signature",
    "TensorSpec": "loopml.models.signature",
    "available_flavors": "loopml.models.flavor",
    "get_flavor": "loopml.models.flavor",
    "infer_signature": "loopml.models.signature",
    "load_model": "loopml.models.api",
    "log_model": "loopml.models.api",
    "resolve_model_uri": "loopml.models.uri",
    "save_model": "loopml.models.api",
}

__all__ = [
    "ColSpec",
    "Flavor",
    "LoggedModel",
    "ModelMetadata",
    "Predictor",
    "Schema",
    "Signature",
    "TensorSpec",
    "available_flavors",
    "get_flavor",
    "infer_signature",
    "load_model",
    "log_model",
    "resolve_model_uri",
    "save_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
