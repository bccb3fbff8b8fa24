"""``Predictor``: a loaded model, called the same way whatever its flavor."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopml.errors import InvalidState
from loopml.models.enforce import enforce_signature
from loopml.models.flavor import Flavor, get_flavor
from loopml.models.format import ModelMetadata, read_input_example, read_metadata
from loopml.models.signature import Signature

__all__ = ["Predictor", "load_folder"]

_path_lock = threading.Lock()


class Predictor:
    """A loaded model: ``predict(data)`` (and ``predict_proba`` etc. when the model has them).

    ``data`` may be a pandas DataFrame, a NumPy array, a list of records (dicts) or one record;
    it is checked against and converted to the model's signature first (see
    :mod:`loopml.models.enforce`). Results are NumPy arrays, or a DataFrame when the model
    returns one.
    """

    def __init__(
        self,
        path: Path,
        metadata: ModelMetadata,
        flavor: Flavor,
        native: Any,
        *,
        uri: str | None = None,
    ) -> None:
        self._path = path
        self._metadata = metadata
        self._flavor = flavor
        self._native = native
        self._uri = uri if uri is not None else str(path)
        self._dataframe = metadata.input_format == "dataframe" and not flavor.takes_array(native)

    # -- what it is --------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The local model folder."""
        return self._path

    @property
    def uri(self) -> str:
        """The URI the model was loaded from."""
        return self._uri

    @property
    def metadata(self) -> ModelMetadata:
        """The parsed ``loopml-model.json``."""
        return self._metadata

    @property
    def flavor(self) -> str:
        """The flavor's name, e.g. ``"sklearn"``."""
        return self._flavor.name

    @property
    def native(self) -> Any:
        """The underlying model object (estimator, booster, module, session ...)."""
        return self._flavor.unwrap(self._native)

    @property
    def runtime(self) -> str:
        """What executes the model: ``"onnxruntime"`` when a scikit-learn model is served by its
        ONNX twin, otherwise the flavor's own runtime (e.g. ``"sklearn"``)."""
        return self._flavor.runtime(self._native)

    @property
    def methods(self) -> tuple[str, ...]:
        return self._metadata.methods

    @property
    def signature(self) -> Signature | None:
        return self._metadata.signature

    @property
    def requirements(self) -> tuple[str, ...]:
        return self._metadata.requirements

    @property
    def input_example(self) -> Any:
        """The stored input example (JSON records or rows), or None."""
        name = self._metadata.input_example
        return None if name is None else read_input_example(self._path, name)

    # -- calling -----------------------------------------------------------------------------
    def predict(self, data: Any) -> Any:
        return self.call("predict", data)

    def predict_proba(self, data: Any) -> Any:
        return self.call("predict_proba", data)

    def decision_function(self, data: Any) -> Any:
        return self.call("decision_function", data)

    def transform(self, data: Any) -> Any:
        return self.call("transform", data)

    def call(self, method: str, data: Any) -> Any:
        """Call the model's ``method`` (one of :attr:`methods`) on ``data``."""
        return self.call_many((method,), data)[method]

    def call_many(self, methods: Sequence[str], data: Any) -> dict[str, Any]:
        """Call several methods on the same ``data``, checking it against the signature once
        (e.g. ``("predict", "predict_proba")`` for a server answering both)."""
        self.check_methods(methods)
        return self.call_prepared(methods, self.prepare(data))

    def check_methods(self, methods: Sequence[str]) -> None:
        """:class:`InvalidState` naming the valid methods unless the model has all ``methods``."""
        for method in methods:
            if method not in self._metadata.methods:
                raise InvalidState(
                    f"the {self.flavor} model {self._uri!r} has no method {method!r}; its "
                    f"methods are: {', '.join(self._metadata.methods)}",
                    method=method,
                    methods=list(self._metadata.methods),
                )

    def prepare(self, data: Any) -> Any:
        """``data`` checked against the signature and converted for the model (what
        :meth:`call_prepared` takes). A server prepares each request on its own, so bad input
        fails alone, then scores many prepared requests in one batch."""
        return enforce_signature(
            data,
            self._metadata.signature,
            dataframe=self._dataframe,
        )

    def call_prepared(self, methods: Sequence[str], prepared: Any) -> dict[str, Any]:
        """Call ``methods`` on input that :meth:`prepare` returned (no checks repeated)."""
        return {m: _as_output(self._flavor.predict(self._native, prepared, m)) for m in methods}

    def __repr__(self) -> str:
        return (
            f"<Predictor {self._uri!r} flavor={self.flavor!r} "
            f"methods={list(self._metadata.methods)}>"
        )


def _as_output(result: Any) -> Any:
    kind = type(result).__name__
    if kind == "DataFrame" or kind == "ndarray":
        return result
    if kind == "Series" and hasattr(result, "to_numpy"):
        return result.to_numpy()
    if isinstance(result, (list, tuple)) or hasattr(result, "__array__"):
        import numpy as np

        try:
            return np.asarray(result)
        except ValueError:  # ragged: e.g. several outputs of different shapes
            return result
    return result


def load_folder(path: Path, *, uri: str | None = None, onnx_fast_path: bool = True) -> Predictor:
    """Load the model folder ``path`` (its ``code/`` folder goes on ``sys.path`` first).

    ``onnx_fast_path=False`` serves a scikit-learn model with its ONNX twin through the
    estimator itself (see :mod:`loopml.models.flavors._sklearn_onnx`).
    """
    meta = read_metadata(path)
    flavor = get_flavor(meta.flavor)
    if meta.code:
        add_code_path(path / meta.code)
    native = flavor.load(path, {**meta.flavor_config, "use_onnx_twin": onnx_fast_path})
    return Predictor(path, meta, flavor, native, uri=uri)


def add_code_path(folder: Path) -> None:
    entry = str(folder.resolve())
    with _path_lock:
        if entry not in sys.path:
            sys.path.insert(0, entry)
