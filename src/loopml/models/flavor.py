"""The flavor interface, and finding flavors through the ``loopml.flavors`` entry points.

A flavor knows how to save one kind of model into a folder, load it back and call it. The
built-in flavors are registered in loopml's own ``pyproject.toml`` exactly as a third-party
package registers its own::

    [project.entry-points."loopml.flavors"]
    catboost = "loopml_catboost:CatBoostFlavor"

Entry points are read on first use, and a flavor's module is imported only when the flavor is
needed, so ``import loopml.models`` stays cheap.
"""

from __future__ import annotations

import abc
import functools
import importlib
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from loopml.errors import InvalidArgument, NotFound

__all__ = [
    "ENTRY_POINT_GROUP",
    "Flavor",
    "available_flavors",
    "find_flavor",
    "get_flavor",
]

ENTRY_POINT_GROUP = "loopml.flavors"

# The built-ins, in the order they are tried; also a fallback when loopml runs from a source
# tree whose package metadata (and so its entry points) is missing or stale.
_BUILTIN: dict[str, str] = {
    "xgboost": "loopml.models.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "loopml.models.flavors.lightgbm:LightGBMFlavor",
    "pytorch": "loopml.models.flavors.pytorch:PyTorchFlavor",
    "onnx": "loopml.models.flavors.onnx:OnnxFlavor",
    "sklearn": "loopml.models.flavors.sklearn:SklearnFlavor",
    "python": "loopml.models.flavors.python:PythonFlavor",
}
_LAST = "python"  # accepts any object with a predict method, so it is tried last


class Flavor(abc.ABC):
    """How to save, load and call one kind of model.

    Subclasses set ``name`` (the entry-point name, stored in ``loopml-model.json``) and
    ``packages`` (PyPI distributions whose installed versions are pinned in the model's
    ``requirements.txt``; names that are not installed are left out, so a flavor may list
    alternatives such as ``xgboost`` and ``xgboost-cpu``). A flavor is instantiated without
    arguments and must not import its library at module level: import it inside the methods.
    """

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def accepts(self, model: Any) -> bool:
        """Whether this flavor can save ``model``. Must be cheap and must not import the
        flavor's library when the model cannot be one of its objects."""

    @abc.abstractmethod
    def save(self, model: Any, path: Path, *, input_example: Any = None) -> dict[str, Any]:
        """Write the model's files into the existing, empty folder ``path``; return a JSON-able
        configuration that :meth:`load` receives back. ``input_example`` is the example given to
        ``log_model`` (or None), for flavors that need one (e.g. to trace a network)."""

    @abc.abstractmethod
    def load(self, path: Path, config: dict[str, Any]) -> Any:
        """The native model saved in ``path`` with ``config``."""

    @abc.abstractmethod
    def methods(self, model: Any) -> tuple[str, ...]:
        """The prediction methods ``model`` offers, e.g. ``("predict", "predict_proba")``."""

    @abc.abstractmethod
    def predict(self, model: Any, data: Any, method: str) -> Any:
        """Call ``method`` of ``model`` on ``data`` (a DataFrame, a NumPy array, or a dict of
        arrays for models with several named inputs) and return the result."""

    def requirements(self, model: Any) -> tuple[str, ...]:
        """The distributions to pin for this particular model (default: ``packages``)."""
        return self.packages

    def unwrap(self, loaded: Any) -> Any:
        """The user's model object from what :meth:`load` returned (default: the same)."""
        return loaded

    def runtime(self, loaded: Any) -> str:
        """What executes the loaded model, e.g. ``"onnxruntime"`` for a scikit-learn model
        served by its ONNX twin (default: the flavor's name)."""
        return self.name

    def takes_array(self, loaded: Any) -> bool:
        """Whether the loaded model takes a plain array even if it was fitted on a DataFrame
        (e.g. an ONNX twin): the input then skips building a DataFrame (default: no)."""
        return False

    def takes_dataframe(self, model: Any) -> bool:
        """Whether the model wants a DataFrame with named columns (rather than an array) when
        its signature has columns. Default: it was fitted on one (``feature_names_in_``)."""
        return hasattr(model, "feature_names_in_")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_lock = threading.Lock()
_instances: dict[str, Flavor] = {}


@functools.cache
def _entry_points() -> dict[str, str]:
    """Flavor name -> ``module:attribute`` target, from the installed entry points."""
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    for name, target in _BUILTIN.items():
        found.setdefault(name, target)
    return found


def _ordered_names() -> list[str]:
    names = list(_entry_points())
    third_party = [n for n in names if n not in _BUILTIN]
    builtin = [n for n in _BUILTIN if n != _LAST]
    return [*third_party, *builtin, _LAST]


def available_flavors() -> list[str]:
    """Names of every installed flavor, in the order :func:`find_flavor` tries them: third-party
    flavors first, then the built-ins, the generic ``python`` flavor last."""
    return _ordered_names()


def get_flavor(name: str) -> Flavor:
    """The flavor registered under ``name``; ``NotFound`` lists the installed ones."""
    if not isinstance(name, str) or name not in _entry_points():
        raise NotFound(
            f"no model flavor named {name!r} is installed; installed flavors: "
            f"{', '.join(_ordered_names())}. A third-party flavor is found through the "
            f"{ENTRY_POINT_GROUP!r} entry point of the package that provides it: install it",
            flavor=str(name),
        )
    with _lock:
        flavor = _instances.get(name)
        if flavor is None:
            flavor = _load(name, _entry_points()[name])
            _instances[name] = flavor
    return flavor


def _load(name: str, target: str) -> Flavor:
    module_name, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise NotFound(
            f"model flavor {name!r} is registered as {target!r}, which cannot be imported "
            f"({exc}); reinstall the package that provides it"
        ) from exc
    flavor = obj() if isinstance(obj, type) else obj
    if not isinstance(flavor, Flavor):
        raise InvalidArgument(
            f"entry point {name!r} of group {ENTRY_POINT_GROUP!r} points at {target!r}, which "
            "is not a loopml.models.Flavor subclass or instance"
        )
    return flavor


def find_flavor(model: Any, flavor: str | Flavor | None = None) -> Flavor:
    """The flavor to save ``model`` with: ``flavor`` if given, else the first that accepts it."""
    if isinstance(flavor, Flavor):
        chosen = flavor
    elif flavor is not None:
        chosen = get_flavor(flavor)
    else:
        for name in _ordered_names():
            try:
                candidate = get_flavor(name)
                accepted = candidate.accepts(model)
            except Exception:  # a broken third-party flavor must not block the others
                continue
            if accepted:
                return candidate
        raise InvalidArgument(
            f"no model flavor accepts a {_type_name(model)}; flavors tried: "
            f"{', '.join(_ordered_names())}. Give an object with a predict method (the python "
            "flavor), or pass flavor= naming one of these"
        )
    if not chosen.accepts(model):
        raise InvalidArgument(
            f"flavor {chosen.name!r} cannot save a {_type_name(model)}; leave flavor= unset to "
            f"pick one automatically, or choose among {', '.join(_ordered_names())}"
        )
    return chosen


def _type_name(model: Any) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def mro_modules(model: Any) -> set[str]:
    """Top-level package names of the classes ``model``'s type derives from (cheap: no import)."""
    return {c.__module__.partition(".")[0] for c in type(model).__mro__}
