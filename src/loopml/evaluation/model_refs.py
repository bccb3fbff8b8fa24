"""What ``evaluate`` was given as the model: loading it, naming it, finding its registry version."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.tracking.client import Client

__all__ = ["ModelRef", "RegistryVersion", "registry_version", "resolve_model"]

_MODELS_SCHEME = "models:/"
_RUNS_SCHEME = "runs:/"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model ready to predict, with the URI and short label recorded with its evaluation."""

    predictor: Any
    uri: str
    label: str  # for the run name: eval-<label>

    @property
    def methods(self) -> tuple[str, ...]:
        declared = getattr(self.predictor, "methods", None)
        if isinstance(declared, (tuple, list)):
            return tuple(str(m) for m in declared)
        return tuple(m for m in ("predict", "predict_proba") if hasattr(self.predictor, m))

    @property
    def estimator_type(self) -> str | None:
        """``"classifier"`` or ``"regressor"`` when the model says so (scikit-learn style)."""
        native = _native(self.predictor)
        try:
            from sklearn.base import is_classifier, is_regressor
        except ImportError:  # pragma: no cover - evaluate needs scikit-learn anyway
            return None
        try:
            if is_classifier(native):
                return "classifier"
            if is_regressor(native):
                return "regressor"
        except Exception:  # not a scikit-learn object at all
            return None
        return None

    @property
    def classes(self) -> Any:
        """The class labels the columns of ``predict_proba`` follow, when known."""
        for obj in (self.predictor, _native(self.predictor)):
            classes = getattr(obj, "classes_", None)
            if classes is not None:
                return classes
        return None


@dataclass(frozen=True, slots=True)
class RegistryVersion:
    name: str
    version: int


def _native(predictor: Any) -> Any:
    """The model inside a loaded :class:`~loopml.models.Predictor`, else ``predictor``."""
    from loopml.models.predictor import Predictor

    return predictor.native if isinstance(predictor, Predictor) else predictor


def resolve_model(model: Any) -> ModelRef:
    """Load ``model`` if it is a URI or a folder; use it as it is if it can predict."""
    if isinstance(model, (str, os.PathLike)):
        from loopml.models.api import load_model

        uri = os.fspath(model)
        return ModelRef(load_model(uri), uri, _label_of_uri(uri))
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"cannot evaluate a {type(model).__name__}: pass a model URI (runs:/..., "
            "models:/..., a folder), a loaded model, or a fitted estimator with a predict method"
        )
    uri = getattr(model, "uri", None)
    if isinstance(uri, str) and uri:
        return ModelRef(model, uri, _label_of_uri(uri))
    cls = type(model)
    return ModelRef(model, f"python:{cls.__module__}.{cls.__qualname__}", cls.__name__)


def _label_of_uri(uri: str) -> str:
    if uri.startswith(_MODELS_SCHEME):
        rest = uri[len(_MODELS_SCHEME) :]
        if "@" in rest:
            return rest
        name, _, version = rest.rpartition("/")
        return f"{name}-v{version}" if version.isdigit() else rest.replace("/", "-")
    if uri.startswith(_RUNS_SCHEME):
        run_id, _, path = uri[len(_RUNS_SCHEME) :].partition("/")
        return f"{run_id[:8]}-{path}" if path else run_id[:8]
    return os.path.basename(os.path.normpath(uri)) or uri


def registry_version(uri: str, client: Client) -> RegistryVersion | None:
    """The registered model and version a ``models:/`` URI names (an alias or ``latest``
    resolved now, through the store), or None for any other URI."""
    if not uri.startswith(_MODELS_SCHEME):
        return None
    from loopml.models.uri import model_version, parse_model_uri

    found = model_version(parse_model_uri(uri), client)
    return RegistryVersion(found.name, found.version)
