"""Evaluation data: splitting it into features and targets, and its content digest.

The digest is the SHA-256 of the features and targets in a canonical form, so the same data
gives the same digest in every process, and two evaluations can be matched by the data they
used. A DataFrame is hashed column by column with ``pandas.util.hash_pandas_object`` (plus its
column names and dtypes); an array by its shape, dtype and bytes. The same values given once as
a DataFrame and once as an array therefore have different digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["LabeledData", "dataset_digest", "is_dataframe", "split_data"]


@dataclass(frozen=True, slots=True)
class LabeledData:
    """Features (a DataFrame or an array, as given) and one target label per row."""

    features: Any
    targets: NDArray[Any]
    source_type: str  # "pandas" or "numpy"


def is_dataframe(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame (without importing pandas)."""
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")
        for cls in type(value).__mro__
    )


def _is_series(value: object) -> bool:
    return any(
        cls.__name__ == "Series" and cls.__module__.startswith("pandas")
        for cls in type(value).__mro__
    )


def split_data(data: Any, targets: Any) -> LabeledData:
    """Features and a 1-D array of labels from ``data`` and ``targets``.

    ``targets`` is either the name of a label column of the DataFrame ``data`` (which is then
    dropped from the features) or an array-like holding one label per row of ``data``.
    """
    import numpy as np

    if data is None:
        raise InvalidArgument("data is None: pass a DataFrame or an array of features")
    frame = is_dataframe(data)
    if isinstance(targets, str):
        if not frame:
            raise InvalidArgument(
                f"targets={targets!r} names a column, but data is a {type(data).__name__}, "
                "not a DataFrame: pass the labels themselves as an array-like instead"
            )
        columns = [str(c) for c in data.columns]
        if targets not in data.columns:
            raise InvalidArgument(
                f"no target column {targets!r} in data; its columns are: {', '.join(columns)}",
                column=targets,
                columns=columns,
            )
        labels = data[targets].to_numpy()
        features = data.drop(columns=[targets])
    else:
        if targets is None:
            raise InvalidArgument(
                "targets is None: pass the name of the label column of a DataFrame, or an "
                "array-like with one label per row"
            )
        labels = targets.to_numpy() if _is_series(targets) else np.asarray(targets)
        features = data if frame else np.asarray(data)
    labels = _one_label_per_row(labels)
    n_rows = len(features)
    if n_rows == 0:
        raise InvalidArgument("data has no rows: evaluation needs at least one")
    if len(labels) != n_rows:
        raise InvalidArgument(
            f"data has {n_rows} rows but targets has {len(labels)} labels: they must be "
            "equally long, one label per row",
            rows=n_rows,
            labels=len(labels),
        )
    return LabeledData(features, labels, "pandas" if frame else "numpy")


def _one_label_per_row(labels: NDArray[Any]) -> NDArray[Any]:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim != 1:
        raise InvalidArgument(
            f"targets has shape {labels.shape}: expected one label per row (a 1-D array-like)",
            shape=list(labels.shape),
        )
    if labels.dtype.kind == "f":
        import numpy as np

        missing = np.flatnonzero(np.isnan(labels))
        if missing.size:
            shown = ", ".join(str(i) for i in missing[:5])
            raise InvalidArgument(
                f"targets has {missing.size} missing (NaN) labels, e.g. at rows {shown}: "
                "every row needs a label",
                missing=int(missing.size),
            )
    return labels


def dataset_digest(features: Any, targets: Any = None) -> str:
    """SHA-256 (64 hex characters) of ``features`` and ``targets`` in a canonical form."""
    h = hashlib.sha256(b"loopml-dataset-v1\n")
    _feed(h, features, "features")
    if targets is not None:
        _feed(h, targets, "targets")
    return h.hexdigest()


def _feed(h: hashlib._Hash, value: Any, role: str) -> None:
    import numpy as np

    if is_dataframe(value):
        header = {
            "role": role,
            "kind": "dataframe",
            "shape": list(value.shape),
            "columns": [str(c) for c in value.columns],
            "dtypes": [str(d) for d in value.dtypes],
        }
        h.update(json.dumps(header).encode())
        for name in value.columns:
            _feed_column(h, value[name])
        return
    if _is_series(value):
        value = value.to_numpy()
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):  # a SciPy sparse matrix
        csr = value.tocsr(copy=True)  # never reorder the caller's matrix in place
        csr.sum_duplicates()
        csr.sort_indices()
        header = {
            "role": role,
            "kind": "sparse",
            "shape": list(csr.shape),
            "dtype": csr.dtype.str,
        }
        h.update(json.dumps(header).encode())
        h.update(np.ascontiguousarray(csr.data).tobytes())
        h.update(csr.indices.astype(np.int64).tobytes())
        h.update(csr.indptr.astype(np.int64).tobytes())
        return
    array = np.asarray(value)
    header = {"role": role, "kind": "array", "shape": list(array.shape), "dtype": array.dtype.str}
    h.update(json.dumps(header).encode())
    h.update(_array_bytes(array))


def _feed_column(h: hashlib._Hash, column: Any) -> None:
    from pandas.util import hash_pandas_object

    try:
        h.update(hash_pandas_object(column, index=False).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): fall back to their text
        h.update(_array_bytes(column.to_numpy()))


def _array_bytes(array: np.ndarray[Any, Any]) -> bytes:
    import numpy as np

    if array.dtype.kind == "O":  # object arrays hold pointers: hash the values' text instead
        return "\x1f".join(repr(x) for x in array.ravel().tolist()).encode()
    return np.ascontiguousarray(array).tobytes()
