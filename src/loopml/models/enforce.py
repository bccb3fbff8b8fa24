"""Signature enforcement: turn what a caller passes into what the model was trained on.

Input may be a pandas DataFrame, a NumPy array, a list of records (dicts), a single record,
a dict of columns or named arrays, or a list of rows. For a model with a **column** signature
the result is a DataFrame with the signature's columns in order (when the model was fitted on a
DataFrame) or a NumPy array with the columns in that order; for a **tensor** signature, a NumPy
array of the signature's dtype. Safe conversions are applied (int to float, float32 to float64,
whole floats to int, numeric text to numbers); anything else fails with an
:class:`~loopml.errors.InvalidArgument` naming the column, the expected type and the value.
Extra columns are ignored. Optional columns may be absent: they are filled with missing values.

pandas is imported only when the input is a DataFrame or the model takes one.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from loopml.errors import InvalidArgument
from loopml.models.signature import (
    NUMPY_DTYPES,
    ColSpec,
    Schema,
    Signature,
    TensorSpec,
    format_shape,
    is_missing,
)

__all__ = ["Table", "enforce_signature"]

_NUMERIC = {"double", "float", "long", "integer"}
_ACCEPTED = (
    "a pandas DataFrame, a NumPy array, a list of records (dicts), one record (a dict) or a list "
    "of rows"
)


class Table(NamedTuple):
    """Rows as a JSON body carries them: a list of rows and, optionally, their column names.

    A server parses request bodies into this instead of a DataFrame: a numeric table then goes
    to the model as one NumPy array, without pandas on the request path.
    """

    columns: tuple[str, ...] | None
    rows: list[Any]

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> Table | None:
        """Records that all have the same keys as a table (``None`` when they differ)."""
        first = records[0]
        keys = first.keys()
        if any(record.keys() != keys for record in records[1:]):
            return None
        columns = tuple(str(k) for k in first)
        return cls(columns, [[record[k] for k in first] for record in records])


def enforce_signature(data: Any, signature: Signature | None, *, dataframe: bool) -> Any:
    """``data`` converted for a model with ``signature``.

    ``dataframe`` says whether the model takes a DataFrame with named columns (only meaningful
    for column signatures). Without a signature, records become a DataFrame and lists an array.
    """
    if isinstance(data, Table):
        if signature is not None and signature.inputs.columns:
            fast = _numeric_table(data, signature.inputs.columns, dataframe=dataframe)
            if fast is not None:
                return fast
        data = _table_input(data)
    elif signature is not None and signature.inputs.columns and _is_ndarray(data):
        fast = _numeric_table(Table(None, data), signature.inputs.columns, dataframe=dataframe)
        if fast is not None:
            return fast
    if signature is None:
        return _without_signature(data)
    schema = signature.inputs
    if schema.columns:
        return _enforce_columns(data, schema.columns, dataframe=dataframe)
    if len(schema.tensors) == 1 and schema.tensors[0].name is None:
        return _enforce_tensor(data, schema.tensors[0])
    return _enforce_tensors(data, schema)


# -- tables of numbers: one array, no per-column work ---------------------------------------
def _numeric_table(table: Table, specs: Sequence[ColSpec], *, dataframe: bool) -> Any:
    """The model input for a table whose every column is a ``double`` the signature wants, or
    ``None`` when anything needs the general path (which also words the errors)."""
    import numpy as np

    if any(spec.type != "double" for spec in specs):
        return None
    try:
        array = np.asarray(table.rows, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if array.ndim != 2 or array.shape[0] == 0:
        return None
    if table.columns is None:
        if array.shape[1] != len(specs):
            return None
    else:
        if array.shape[1] != len(table.columns):
            return None
        position = {name: i for i, name in enumerate(table.columns)}
        try:
            order = [position[spec.name] for spec in specs]
        except KeyError:  # a missing column: the general path names it
            return None
        if order != list(range(array.shape[1])):
            array = array[:, order]
    if np.isnan(array).any():  # missing values: the general path applies the optional rules
        return None
    if dataframe:
        import pandas as pd

        return pd.DataFrame(array, columns=[spec.name for spec in specs])
    return array


def _table_input(table: Table) -> Any:
    if table.columns is None:
        return table.rows
    import pandas as pd

    return pd.DataFrame(table.rows, columns=list(table.columns))


# -- no signature ----------------------------------------------------------------------------
def _without_signature(data: Any) -> Any:
    if isinstance(data, Mapping) and not _is_columnar(data):
        data = [data]
    if isinstance(data, Mapping) or (
        isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data)
    ):
        import pandas as pd

        return pd.DataFrame(data)
    if isinstance(data, (list, tuple)):
        import numpy as np

        return np.asarray(data)
    return _from_tensor_library(data)


def _from_tensor_library(data: Any) -> Any:
    if type(data).__name__ == "Tensor" and hasattr(data, "detach"):  # torch
        return data.detach().cpu().numpy()
    return data


def _is_columnar(data: Mapping[str, Any]) -> bool:
    """A dict of columns (every value a list or array) rather than one record."""
    return bool(data) and all(
        isinstance(v, (list, tuple)) or (hasattr(v, "shape") and hasattr(v, "dtype"))
        for v in data.values()
    )


# -- columns ---------------------------------------------------------------------------------
def _enforce_columns(data: Any, specs: Sequence[ColSpec], *, dataframe: bool) -> Any:
    import numpy as np

    data = _from_tensor_library(data)
    columns, given = _columns_from(data, specs)
    n_rows = _row_count(columns)
    missing = [s for s in specs if s.name not in columns and not s.optional]
    if missing:
        first = missing[0]
        others = f" (also missing: {', '.join(str(s) for s in missing[1:])})" if missing[1:] else ""
        raise InvalidArgument(
            f"missing required column {first.name!r} ({first.type}){others}; columns given: "
            f"{given}; the model takes: {', '.join(str(s) for s in specs)}",
            column=first.name,
            expected_type=first.type,
        )
    converted: dict[str, Any] = {}
    for spec in specs:
        values = columns.get(spec.name)
        if values is None:
            converted[spec.name] = _missing_column(spec, n_rows)
        else:
            converted[spec.name] = _convert_column(spec, values)
    if dataframe:
        import pandas as pd

        return pd.DataFrame(converted, columns=[s.name for s in specs])
    arrays = list(converted.values())
    if not arrays:
        return np.empty((n_rows, 0))
    return np.column_stack(arrays)


def _columns_from(data: Any, specs: Sequence[ColSpec]) -> tuple[dict[str, Any], list[str]]:
    """(name -> 1-D values, the names the caller gave) for the columns the model takes."""
    import numpy as np

    wanted = {s.name for s in specs}
    if _is_dataframe(data):
        names = [str(c) for c in data.columns]
        columns = {str(c): data[c].to_numpy() for c in data.columns if str(c) in wanted}
        return columns, names
    if isinstance(data, Mapping):
        if _is_columnar(data):
            columns = {
                str(k): np.asarray(v) if hasattr(v, "dtype") else _object_array(v)
                for k, v in data.items()
                if str(k) in wanted
            }
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise InvalidArgument(
                    f"the columns given have different lengths: "
                    f"{ {k: len(v) for k, v in columns.items()} }; give equally long columns"
                )
            return columns, [str(k) for k in data]
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, Mapping) for r in data):
        names = []
        for record in data:
            for key in record:
                if key not in names:
                    names.append(key)
        columns = {
            name: _object_array([r.get(name) for r in data]) for name in names if name in wanted
        }
        return columns, [str(n) for n in names]
    if isinstance(data, (list, tuple)):
        if not data:
            raise InvalidArgument(f"no rows given: pass {_ACCEPTED} with at least one row")
        data = np.asarray(data, dtype=object if _mixed(data) else None)
    if _is_ndarray(data):
        if data.ndim == 1 and len(specs) == 1:
            data = data.reshape(-1, 1)
        if data.ndim != 2 or data.shape[1] != len(specs):
            raise InvalidArgument(
                f"wrong input shape: the model takes {len(specs)} columns "
                f"({', '.join(str(s) for s in specs)}), so an array must have shape "
                f"(n, {len(specs)}); got {format_shape(data.shape)}",
                expected=[-1, len(specs)],
                got=list(data.shape),
            )
        return {s.name: data[:, i] for i, s in enumerate(specs)}, [
            f"<array column {i}>" for i in range(data.shape[1])
        ]
    raise InvalidArgument(f"cannot make model input from a {type(data).__name__}: give {_ACCEPTED}")


def _mixed(rows: Sequence[Any]) -> bool:
    return any(isinstance(v, (str, bytes)) for row in rows[:100] for v in _iter(row))


def _iter(row: Any) -> Sequence[Any]:
    return row if isinstance(row, (list, tuple)) else [row]


def _object_array(values: Sequence[Any]) -> Any:
    import numpy as np

    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _row_count(columns: Mapping[str, Any]) -> int:
    for values in columns.values():
        return len(values)
    return 0


def _missing_column(spec: ColSpec, n_rows: int) -> Any:
    import numpy as np

    if spec.type in ("double", "float"):
        return np.full(n_rows, np.nan, dtype=NUMPY_DTYPES[spec.type])
    if spec.type in ("long", "integer"):
        return np.full(n_rows, np.nan)
    if spec.type == "datetime":
        return np.full(n_rows, np.datetime64("NaT"), dtype="datetime64[ns]")
    return _object_array([None] * n_rows)


def _convert_column(spec: ColSpec, values: Any) -> Any:
    import numpy as np

    values = np.asarray(values)
    kind = values.dtype.kind
    target = NUMPY_DTYPES[spec.type]
    if spec.type in ("double", "float"):
        if kind in "fiub":
            return values.astype(target, copy=False)
        return _per_value(spec, values, _to_float, target)
    if spec.type in ("long", "integer"):
        if kind in "iub":
            return _check_int_range(spec, values, target)
        if kind == "f":
            return _whole_floats(spec, values, target)
        converted = _per_value(spec, values, _to_int, "object")
        if any(v is None for v in converted):
            return np.array([np.nan if v is None else v for v in converted], dtype="float64")
        return _check_int_range(spec, converted.astype("int64"), target)
    if spec.type == "boolean":
        if kind == "b":
            return values
        converted = _per_value(spec, values, _to_bool, "object")
        return converted if any(v is None for v in converted) else converted.astype(bool)
    if spec.type == "string":
        if kind == "U":
            return values.astype(object)
        return _per_value(spec, values, _to_str, "object")
    if spec.type == "binary":
        if kind == "S":
            return values.astype(object)
        return _per_value(spec, values, _to_bytes, "object")
    if kind == "M":  # datetime
        return values.astype(target)
    return _per_value(spec, values, _to_datetime, target)


class _Refused(Exception):
    """A value of the wrong type (converted to InvalidArgument with the column's name)."""


def _per_value(spec: ColSpec, values: Any, convert: Any, dtype: str) -> Any:
    import numpy as np

    out: list[Any] = []
    for row, value in enumerate(values.tolist() if values.dtype.kind != "O" else values):
        if is_missing(value):
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except (_Refused, ValueError, TypeError, OverflowError):
            raise _wrong_type(spec, value, row) from None
    if dtype == "object":
        return _object_array(out)
    if dtype.startswith("float"):
        return np.array([np.nan if v is None else v for v in out], dtype=dtype)
    if dtype.startswith("datetime"):
        return np.array(["NaT" if v is None else v for v in out], dtype=dtype)
    return np.array(out, dtype=dtype)


def _wrong_type(spec: ColSpec, value: Any, row: int) -> InvalidArgument:
    return InvalidArgument(
        f"column {spec.name!r} expects {spec.type}, got {_short(value)} "
        f"({type(value).__name__}) in row {row}, which cannot be safely converted to "
        f"{spec.type}",
        column=spec.name,
        expected_type=spec.type,
        value=_short(value),
        row=row,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_float(value: Any) -> float:
    if isinstance(value, (str, bytes)):
        return float(value)  # ValueError for non-numeric text
    if isinstance(value, (_dt.date, _dt.datetime)) or not hasattr(value, "__float__"):
        raise _Refused
    return float(value)


def _to_int(value: Any) -> int:
    if isinstance(value, str):
        return int(value.strip())
    if hasattr(value, "__index__"):  # int, bool, NumPy integers
        return int(value.__index__())
    if hasattr(value, "is_integer") and value.is_integer():  # whole floats
        return int(value)
    raise _Refused


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise _Refused


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Refused


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise _Refused


def _to_datetime(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (_dt.datetime, _dt.date, str)) or type(value).__name__ in (
        "Timestamp",
        "datetime64",
    ):
        if type(value).__name__ == "Timestamp":
            value = value.to_datetime64()
        return np.datetime64(value, "ns")
    raise _Refused


def _check_int_range(spec: ColSpec, values: Any, target: str) -> Any:
    import numpy as np

    if values.dtype == np.dtype(target):
        return values
    if values.size and values.dtype.kind in "iu":
        info = np.iinfo(target)
        low, high = values.min(), values.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            row = int(np.argmax(values == bad))
            raise _wrong_type(spec, bad.item(), row)
    return values.astype(target)


def _whole_floats(spec: ColSpec, values: Any, target: str) -> Any:
    import numpy as np

    finite = np.isfinite(values)
    fractional = finite & (values != np.round(values))
    if fractional.any():
        row = int(np.argmax(fractional))
        raise _wrong_type(spec, values[row].item(), row)
    if not finite.all():
        infinite = np.isinf(values)
        if infinite.any():
            row = int(np.argmax(infinite))
            raise _wrong_type(spec, values[row].item(), row)
        return values.astype("float64")  # missing values: an int column cannot hold NaN
    return _check_int_range(spec, values.astype("int64"), target)


# -- tensors ---------------------------------------------------------------------------------
def _enforce_tensor(data: Any, spec: TensorSpec) -> Any:
    import numpy as np

    data = _from_tensor_library(data)
    if _is_dataframe(data):
        data = data.to_numpy()
    elif isinstance(data, Mapping) or (
        isinstance(data, (list, tuple)) and data and isinstance(data[0], Mapping)
    ):
        raise InvalidArgument(
            f"this model takes a {spec} (no column names), got records; pass a NumPy array, a "
            "list of rows or a DataFrame with the features in training order"
        )
    elif not _is_ndarray(data):
        try:
            data = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"cannot make a {spec} from a {type(data).__name__} ({exc}): give {_ACCEPTED}"
            ) from None
    return _cast_tensor(data, spec)


def _cast_tensor(array: Any, spec: TensorSpec) -> Any:
    import numpy as np

    expected = spec.shape
    label = f"input {spec.name!r}" if spec.name else "input"
    if array.ndim != len(expected) or any(
        e != -1 and e != g for e, g in zip(expected, array.shape, strict=False)
    ):
        detail = ""
        if len(expected) == 2 and array.ndim == 2 and expected[1] != array.shape[1]:
            detail = f" ({expected[1]} features per row expected, got {array.shape[1]})"
        raise InvalidArgument(
            f"wrong {label} shape: expected {format_shape(expected)}, got "
            f"{format_shape(array.shape)}{detail}",
            expected=list(expected),
            got=list(array.shape),
        )
    target = np.dtype(spec.dtype)
    source = array.dtype
    if source == target:
        return array
    if target.kind == "f" and source.kind in "fiub":
        return array.astype(target)
    if target.kind in "iu" and source.kind in "iub":
        if source.kind != "b" and array.size:
            info = np.iinfo(target)
            if array.min() < info.min or array.max() > info.max:
                raise _tensor_value_error(label, spec, array, None)
        return array.astype(target)
    if target.kind in "iu" and source.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise _tensor_value_error(label, spec, array, bad)
        return array.astype(target)
    if target.kind in "fiu" and source.kind in "OUS":
        try:
            return array.astype(target)
        except (ValueError, TypeError):
            flat = array.reshape(-1)
            for value in flat:
                try:
                    np.asarray(value).astype(target)
                except (ValueError, TypeError):
                    raise InvalidArgument(
                        f"{label} expects {spec.dtype} values, got {_short(value)} "
                        f"({type(value).__name__}), which cannot be safely converted",
                        expected_type=spec.dtype,
                        value=_short(value),
                    ) from None
            raise
    if target.kind == "b" and source.kind != "b":
        raise InvalidArgument(
            f"{label} expects bool values, got an array of {source}; pass True/False values",
            expected_type=spec.dtype,
        )
    return array.astype(target) if source.kind == target.kind else array


def _tensor_value_error(label: str, spec: TensorSpec, array: Any, bad: Any) -> InvalidArgument:
    import numpy as np

    if bad is None:
        info = np.iinfo(np.dtype(spec.dtype))
        flat = array.reshape(-1)
        index = int(np.argmax((flat < info.min) | (flat > info.max)))
        value = flat[index].item()
    else:
        value = array.reshape(-1)[int(np.argmax(bad.reshape(-1)))].item()
    return InvalidArgument(
        f"{label} expects {spec.dtype} values, got {value!r}, which cannot be safely converted "
        f"to {spec.dtype}",
        expected_type=spec.dtype,
        value=repr(value),
    )


def _enforce_tensors(data: Any, schema: Schema) -> dict[str, Any]:
    import numpy as np

    if not isinstance(data, Mapping):
        names = ", ".join(str(t.name) for t in schema.tensors)
        raise InvalidArgument(
            f"this model takes named inputs ({names}): pass a dict of arrays, got a "
            f"{type(data).__name__}"
        )
    out: dict[str, Any] = {}
    for spec in schema.tensors:
        name = str(spec.name)
        if name not in data:
            raise InvalidArgument(
                f"missing input {name!r} ({spec}); inputs given: {sorted(map(str, data))}; the "
                f"model takes: {schema}",
                input=name,
            )
        value = _from_tensor_library(data[name])
        out[name] = _cast_tensor(np.asarray(value), spec)
    return out


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def _is_ndarray(data: Any) -> bool:
    return type(data).__name__ == "ndarray" and hasattr(data, "dtype")
