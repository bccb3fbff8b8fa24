"""Arrow columns assembled from the NumPy arrays of many entries.

Entries of one segment may carry different columns: a column an entry lacks is null for that
entry's rows. Arrays whose types differ between entries are widened (int and float give
float); values that fit no common type are kept as strings. A 2-D array becomes a list column
(one list per row); floating lists are stored as ``list<double>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

_NUMERIC = frozenset("biuf")


class ColumnSet:
    """Named columns filled entry by entry, in the order the names first appeared."""

    def __init__(self) -> None:
        self._parts: dict[str, list[NDArray[Any] | int]] = {}
        self._rows = 0

    def add(self, columns: Mapping[str, NDArray[Any]], n: int) -> None:
        """Append one entry's ``n`` rows; each array in ``columns`` has ``n`` rows."""
        for name, values in columns.items():
            parts = self._parts.get(name)
            if parts is None:
                parts = self._parts[name] = [self._rows] if self._rows else []
            parts.append(values)
        if len(columns) != len(self._parts):
            for name, parts in self._parts.items():
                if name not in columns:
                    _append_gap(parts, n)
        self._rows += n

    def arrays(self) -> dict[str, pa.Array]:
        return {name: to_arrow_column(parts) for name, parts in self._parts.items()}


def _append_gap(parts: list[NDArray[Any] | int], n: int) -> None:
    last = parts[-1] if parts else None
    if isinstance(last, int):
        parts[-1] = last + n
    else:
        parts.append(n)


def to_arrow_column(parts: list[NDArray[Any] | int]) -> pa.Array:
    """One Arrow array from arrays and gaps (null rows), in order."""
    arrays = [p for p in parts if not isinstance(p, int)]
    if any(a.ndim > 1 for a in arrays):
        return _list_column(parts)
    import numpy as np

    dtype = common_dtype(arrays)
    if len(arrays) == len(parts):  # no gaps: one concatenation, no masks
        if any(a.dtype != dtype for a in arrays):
            arrays = [a.astype(dtype, copy=False) for a in arrays]
        return to_arrow(arrays[0] if len(arrays) == 1 else np.concatenate(arrays), None)
    values: list[NDArray[Any]] = []
    masks: list[NDArray[Any]] = []
    for p in parts:
        if isinstance(p, int):
            values.append(_placeholder(p, dtype))
            masks.append(np.ones(p, dtype=bool))
        else:
            values.append(p.astype(dtype, copy=False))
            masks.append(np.zeros(len(p), dtype=bool))
    flat = values[0] if len(values) == 1 else np.concatenate(values)
    mask = np.concatenate(masks)
    return to_arrow(flat, mask)


def common_dtype(arrays: list[NDArray[Any]]) -> Any:
    """The type every array converts to without loss of meaning (object if none)."""
    import numpy as np

    if not arrays:
        return np.dtype(object)
    first = arrays[0].dtype
    if all(a.dtype == first for a in arrays) and first.kind not in "USV":
        return first
    kinds = {a.dtype.kind for a in arrays}
    if kinds <= _NUMERIC or kinds == {"M"} or kinds == {"m"}:
        return np.result_type(*arrays)
    return np.dtype(object)


def _placeholder(n: int, dtype: Any) -> NDArray[Any]:
    import numpy as np

    if dtype.kind == "O":
        return np.full(n, None, dtype=object)
    return np.zeros(n, dtype=dtype)


def to_arrow(values: NDArray[Any], mask: NDArray[Any] | None) -> pa.Array:
    """A 1-D array as Arrow; NaN/None in object arrays are null; unconvertible values as text."""
    import pyarrow as pa

    try:
        if values.dtype.kind == "O":
            return pa.array(values, mask=mask, from_pandas=True)
        return pa.array(values, mask=mask)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        text = [None if _is_missing(v) else str(v) for v in values.tolist()]
        return pa.array(text, type=pa.string(), mask=mask)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _list_column(parts: list[NDArray[Any] | int]) -> pa.Array:
    import numpy as np

    shapes = {p.shape[1:] if not isinstance(p, int) and p.ndim == 2 else None for p in parts}
    if len(shapes) == 1 and None not in shapes:  # the usual case: no gaps, one width
        (width,) = shapes.pop()  # type: ignore[misc]
        matrix = np.concatenate(parts)
        dtype = np.dtype(np.float64) if matrix.dtype.kind == "f" else matrix.dtype
        values = matrix.astype(dtype, copy=False).reshape(-1)
        offsets = np.arange(len(matrix) + 1, dtype=np.int64) * width
        return _lists(offsets, values, None)
    lengths: list[NDArray[Any]] = []
    flat: list[NDArray[Any]] = []
    nulls: list[NDArray[Any]] = []
    for p in parts:
        if isinstance(p, int):
            lengths.append(np.zeros(p, dtype=np.int64))
            nulls.append(np.ones(p, dtype=bool))
            continue
        rows = p.reshape(len(p), -1)
        lengths.append(np.full(len(p), rows.shape[1], dtype=np.int64))
        flat.append(rows.reshape(-1))
        nulls.append(np.zeros(len(p), dtype=bool))
    dtype = common_dtype(flat)
    if dtype.kind == "f":
        dtype = np.dtype(np.float64)
    values = np.concatenate([a.astype(dtype, copy=False) for a in flat])
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))])
    mask = np.concatenate(nulls)
    return _lists(offsets, values, mask if mask.any() else None)


def _lists(offsets: NDArray[Any], values: NDArray[Any], mask: NDArray[Any] | None) -> pa.Array:
    import pyarrow as pa

    builder = pa.ListArray if offsets[-1] < 2**31 else pa.LargeListArray
    offset_type = pa.int32() if builder is pa.ListArray else pa.int64()
    return builder.from_arrays(
        pa.array(offsets, type=offset_type),
        to_arrow(values, None),
        mask=None if mask is None else pa.array(mask),
    )
