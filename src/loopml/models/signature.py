"""Model signatures: what a model takes and returns, inferred from an input example.

Two kinds of schema:

- **columns** (from a pandas DataFrame, a list of records or a single record): a name and a
  type per column, the type one of ``double``, ``float``, ``long``, ``integer``, ``boolean``,
  ``string``, ``binary``, ``datetime``; a column is ``optional`` when the example misses values
  in it (or when declared so).
- **tensors** (from a NumPy array, or a dict of arrays): a NumPy dtype and a shape whose first
  (batch) dimension is ``-1``.

The module imports NumPy and pandas only inside the functions that inspect data.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidArgument

__all__ = [
    "COLUMN_TYPES",
    "ColSpec",
    "Schema",
    "Signature",
    "TensorSpec",
    "infer_schema",
    "infer_signature",
]

COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "binary", "datetime")

# Column type -> the NumPy dtype a value of it becomes.
NUMPY_DTYPES: dict[str, str] = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named column: its type (one of :data:`COLUMN_TYPES`) and whether it may be missing."""

    name: str
    type: str
    optional: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgument(f"invalid column name {self.name!r}: must be a non-empty string")
        if self.type not in COLUMN_TYPES:
            raise InvalidArgument(
                f"invalid type {self.type!r} for column {self.name!r}: must be one of "
                f"{', '.join(COLUMN_TYPES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "optional": self.optional}

    def __str__(self) -> str:
        return f"{self.name} ({self.type}{', optional' if self.optional else ''})"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An array: its NumPy dtype name and shape (``-1`` for a free dimension, first the batch)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dtype, str) or not self.dtype:
            raise InvalidArgument(
                f"invalid tensor dtype {self.dtype!r}: must be a NumPy dtype name like 'float32'"
            )
        shape = tuple(self.shape)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < -1 for d in shape):
            raise InvalidArgument(
                f"invalid tensor shape {self.shape!r}: must be whole numbers >= 0, or -1 for a "
                "free dimension"
            )
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def __str__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"{label}{self.dtype} array of shape {format_shape(self.shape)}"


def format_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join("n" if d == -1 else str(d) for d in shape) + ")"


@dataclass(frozen=True, slots=True)
class Schema:
    """Either named columns or one or more tensors (never both)."""

    columns: tuple[ColSpec, ...] = ()
    tensors: tuple[TensorSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "tensors", tuple(self.tensors))
        if bool(self.columns) == bool(self.tensors):
            raise InvalidArgument(
                "a schema has either columns or tensors: got "
                f"{len(self.columns)} columns and {len(self.tensors)} tensors"
            )
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidArgument(f"duplicate column names in schema: {dupes}")

    @property
    def kind(self) -> str:
        """``"columns"`` or ``"tensor"``."""
        return "columns" if self.columns else "tensor"

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        if self.columns:
            return {"type": "columns", "columns": [c.to_dict() for c in self.columns]}
        return {"type": "tensor", "tensors": [t.to_dict() for t in self.tensors]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        try:
            kind = data["type"]
            if kind == "columns":
                return cls(
                    columns=tuple(
                        ColSpec(c["name"], c["type"], bool(c.get("optional", False)))
                        for c in data["columns"]
                    )
                )
            if kind == "tensor":
                return cls(
                    tensors=tuple(
                        TensorSpec(t["dtype"], tuple(t["shape"]), t.get("name"))
                        for t in data["tensors"]
                    )
                )
        except (KeyError, TypeError) as exc:
            raise InvalidArgument(f"invalid schema {dict(data)!r}: missing or bad {exc}") from None
        raise InvalidArgument(
            f"invalid schema type {kind!r}: must be 'columns' or 'tensor'", schema=dict(data)
        )

    def __str__(self) -> str:
        parts = self.columns if self.columns else self.tensors
        return ", ".join(str(p) for p in parts)


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's input schema and (when known) output schema."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": None if self.outputs is None else self.outputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise InvalidArgument(
                f"invalid signature {data!r}: must be a mapping with 'inputs' (and 'outputs')"
            )
        outputs = data.get("outputs")
        return cls(
            Schema.from_dict(data["inputs"]),
            None if outputs is None else Schema.from_dict(outputs),
        )


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """The signature of a model that takes ``input_example`` (and returned ``output`` for it).

    ``input_example`` is a pandas DataFrame, a NumPy array, a list of records (dicts), a single
    record, or a dict of arrays.
    """
    return Signature(infer_schema(input_example), None if output is None else infer_schema(output))


def infer_schema(data: Any) -> Schema:
    """The schema of one value: see :func:`infer_signature`."""
    if _is_dataframe(data):
        return Schema(columns=tuple(_column_of_series(str(n), data[n]) for n in data.columns))
    if _is_series(data):
        return infer_schema(data.to_numpy())
    if isinstance(data, Mapping):
        if data and all(_is_array_like(v) for v in data.values()):
            return _tensors_of_dict(data)
        return _columns_of_records([data])
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidArgument("cannot infer a schema from an empty list: give some rows")
        if all(isinstance(r, Mapping) for r in data):
            return _columns_of_records(data)
        import numpy as np

        return infer_schema(np.asarray(data))
    if _is_ndarray(data):
        return Schema(tensors=(_tensor_of_array(data),))
    if hasattr(data, "numpy") and hasattr(data, "shape"):  # a torch tensor
        return infer_schema(data.detach().cpu().numpy())
    raise InvalidArgument(
        f"cannot infer a signature from a {type(data).__name__}: give a pandas DataFrame, a "
        "NumPy array, a list of records (dicts), one record, or a dict of arrays"
    )


def _is_dataframe(data: Any) -> bool:
    return (
        type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "dtypes")
    )


def _is_series(data: Any) -> bool:
    return type(data).__name__ == "Series" and hasattr(data, "dtype") and hasattr(data, "index")


def _is_ndarray(data: Any) -> bool:
    return type(data).__module__ == "numpy" and type(data).__name__ == "ndarray"


def _is_array_like(value: Any) -> bool:
    return _is_ndarray(value) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def _tensor_of_array(array: Any, name: str | None = None) -> TensorSpec:
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind == "O":
        raise InvalidArgument(
            "cannot infer a tensor signature from an array of Python objects (dtype object): "
            "give a numeric array, or a DataFrame for mixed columns"
        )
    if array.ndim == 0:
        raise InvalidArgument("cannot infer a tensor signature from a scalar: give an array")
    return TensorSpec(str(array.dtype), (-1, *(int(d) for d in array.shape[1:])), name)


def _tensors_of_dict(data: Mapping[str, Any]) -> Schema:
    return Schema(tensors=tuple(_tensor_of_array(v, str(k)) for k, v in data.items()))


def _column_of_series(name: str, series: Any) -> ColSpec:
    import numpy as np

    optional = bool(series.isna().any())
    dtype = series.dtype
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # pandas nullable Int64, boolean, Float64
    kind = getattr(dtype, "kind", "O")
    if getattr(dtype, "name", "") == "category":
        values = series.cat.categories.to_numpy()
        return ColSpec(name, _type_of_values(name, values), optional)
    if numpy_dtype is not None and kind != "O":
        return ColSpec(name, _type_of_numpy(name, np.dtype(numpy_dtype)), optional)
    if kind in "biufcM":
        return ColSpec(name, _type_of_numpy(name, np.dtype(dtype)), optional)
    if kind == "m":
        raise InvalidArgument(
            f"column {name!r} holds time differences ({dtype}), which a signature cannot "
            f"describe; convert it to seconds (a number) first"
        )
    values = series.dropna().to_numpy()
    return ColSpec(name, _type_of_values(name, values), optional)


def _type_of_numpy(name: str, dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind == "f":
        return "double" if size >= 8 else "float"
    if kind == "i":
        return "long" if size >= 8 else "integer"
    if kind == "u":
        return "long" if size >= 4 else "integer"
    if kind == "M":
        return "datetime"
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    raise InvalidArgument(
        f"column {name!r} has dtype {dtype}, which a signature cannot describe; convert it to "
        f"one of {', '.join(COLUMN_TYPES)}"
    )


def _type_of_values(name: str, values: Sequence[Any]) -> str:
    """The column type of Python values (missing values already left out)."""
    seen: set[str] = set()
    for value in values:
        seen.add(_type_of_value(name, value))
    if not seen:
        raise InvalidArgument(
            f"cannot infer the type of column {name!r}: every value in the example is missing; "
            "give an example with at least one value, or pass signature= explicitly"
        )
    if len(seen) == 1:
        return seen.pop()
    if seen <= {"long", "double"}:
        return "double"
    raise InvalidArgument(
        f"column {name!r} mixes values of types {sorted(seen)}; a column must hold one type "
        f"({', '.join(COLUMN_TYPES)})"
    )


def _type_of_value(name: str, value: Any) -> str:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "boolean"
    if isinstance(value, int) or type(value).__name__.startswith(("int", "uint")):
        return "long"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "binary"
    if isinstance(value, (_dt.datetime, _dt.date)) or type(value).__name__ in (
        "Timestamp",
        "datetime64",
    ):
        return "datetime"
    raise InvalidArgument(
        f"column {name!r} holds a {type(value).__name__} ({value!r}), which a signature cannot "
        f"describe; use values of one of the types {', '.join(COLUMN_TYPES)}"
    )


def is_missing(value: Any) -> bool:
    """None, NaN, pandas NA or NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    name = type(value).__name__
    if name in ("NAType", "NaTType"):
        return True
    if name.startswith("float") and name != "float":
        return bool(value != value)
    if name == "datetime64":
        return bool(value != value)
    return False


def _columns_of_records(records: Sequence[Mapping[str, Any]]) -> Schema:
    names: list[str] = []
    for record in records:
        for key in record:
            if not isinstance(key, str):
                raise InvalidArgument(
                    f"record keys must be column names (strings): got {key!r} "
                    f"({type(key).__name__})"
                )
            if key not in names:
                names.append(key)
    specs = []
    for name in names:
        values = [r.get(name) for r in records]
        present = [v for v in values if not is_missing(v)]
        optional = len(present) < len(values)
        specs.append(ColSpec(name, _type_of_values(name, present), optional))
    if not specs:
        raise InvalidArgument("cannot infer a schema from records without keys: give columns")
    return Schema(columns=tuple(specs))
