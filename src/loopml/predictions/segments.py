"""The Parquet layout of prediction log segments: one row per input row of a request.

Prediction segments have ``request_id`` (string), ``row`` (int32, the row's index within its
request), ``timestamp_ms`` (int64), ``latency_ms`` (float64), ``model_name``,
``model_version``, ``role`` and ``protocol`` (dictionary-encoded strings), then one
``input.<column>`` per feature (``input.0``, ``input.1``, ... for arrays without names) and
one ``output.<method>`` per model output (2-D outputs such as ``predict_proba`` as lists).
Feedback segments have ``request_id``, ``row``, ``timestamp_ms`` and ``ground_truth``.
Files are zstd-compressed and carry :data:`FORMAT_VERSION` in their schema metadata.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.core.prediction_log import SegmentKind, check_ms
from loopml.errors import InvalidArgument, InvalidState
from loopml.predictions._columns import ColumnSet
from loopml.predictions.entries import FeedbackEntry, PredictionEntry

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

FORMAT_VERSION = 1
VERSION_KEY = b"loopml.prediction_log.version"
KIND_KEY = b"loopml.prediction_log.kind"
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
GROUND_TRUTH = "ground_truth"
_LABELS = ("model_name", "model_version", "role", "protocol")


class SegmentBuilder:
    """The rows of one future segment, added entry by entry (all of one kind)."""

    def __init__(self, kind: SegmentKind) -> None:
        self.kind = kind
        self.rows = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self._counts: list[int] = []
        self._request_ids: list[str] = []
        self._timestamps: list[int] = []
        self._latencies: list[float] = []
        self._labels: list[tuple[str, str, str, str]] = []
        self._inputs = ColumnSet()
        self._outputs = ColumnSet()

    def add_prediction(self, entry: PredictionEntry) -> int:
        """Add an entry's rows (or raise, adding nothing); returns how many rows it had."""
        n, inputs = input_columns(entry.inputs, entry.input_names)
        outputs = output_columns(entry.outputs, n)
        labels = (
            str(entry.model_name),
            str(entry.model_version),
            str(entry.role),
            str(entry.protocol),
        )
        latency = float(entry.latency_ms)
        if n:
            self._add_meta(n, entry.request_id, entry.timestamp_ms)
            self._latencies.append(latency)
            self._labels.append(labels)
            self._inputs.add(inputs, n)
            self._outputs.add(outputs, n)
        return n

    def add_predictions(self, entries: Sequence[PredictionEntry]) -> int:
        """Add many entries whose inputs are 2-D arrays of one width, dtype and column names
        and whose outputs have the same methods, stacked once (the server's usual traffic:
        a few NumPy calls instead of work per column per entry). Raises, adding nothing, when
        any entry does not fit; returns how many rows were added."""
        import numpy as np

        first = entries[0]
        counts = [len(entry.inputs) for entry in entries]
        n, inputs = input_columns(np.concatenate([e.inputs for e in entries]), first.input_names)
        stacked: dict[str, Any] = {}
        for method in first.outputs:
            parts = [entry.outputs[method] for entry in entries]
            if any(len(part) != count for part, count in zip(parts, counts, strict=True)):
                raise InvalidArgument(f"an entry's output {method!r} has the wrong row count")
            stacked[method] = np.concatenate(parts)
        outputs = output_columns(stacked, n)
        # everything that can raise, before anything is appended
        stamps = [_timestamp(entry.timestamp_ms) for entry in entries]
        latencies = [float(entry.latency_ms) for entry in entries]
        for entry, count, stamp in zip(entries, counts, stamps, strict=True):
            self._add_meta(count, entry.request_id, stamp)
            self._labels.append(
                (entry.model_name, entry.model_version, str(entry.role), entry.protocol)
            )
        self._latencies.extend(latencies)
        self._inputs.add(inputs, n)
        self._outputs.add(outputs, n)
        return n

    def add_feedback(self, entry: FeedbackEntry) -> int:
        """Add an entry's ground truth rows (or raise, adding nothing); returns how many."""
        values = ground_truth_values(entry.ground_truth)
        n = len(values)
        if n:
            self._add_meta(n, entry.request_id, entry.timestamp_ms)
            self._outputs.add({GROUND_TRUTH: values}, n)
        return n

    def _add_meta(self, n: int, request_id: str, timestamp_ms: int) -> None:
        ts = _timestamp(timestamp_ms)
        self._counts.append(n)
        self._request_ids.append(str(request_id))
        self._timestamps.append(ts)
        self.rows += n
        self.first_ms = ts if self.first_ms is None else min(self.first_ms, ts)
        self.last_ms = ts if self.last_ms is None else max(self.last_ms, ts)

    def to_table(self) -> pa.Table:
        """The rows as an Arrow table in the layout described above."""
        import numpy as np
        import pyarrow as pa

        counts = np.asarray(self._counts, dtype=np.int64)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        columns: dict[str, pa.Array] = {
            "request_id": pa.array(_repeat(self._request_ids, counts), type=pa.string()),
            "row": pa.array((np.arange(self.rows) - starts).astype(np.int32)),
            "timestamp_ms": pa.array(np.repeat(np.asarray(self._timestamps, np.int64), counts)),
        }
        if self.kind is SegmentKind.PREDICTIONS:
            columns["latency_ms"] = pa.array(
                np.repeat(np.asarray(self._latencies, np.float64), counts)
            )
            for i, name in enumerate(_LABELS):
                labels = pa.array(_repeat([x[i] for x in self._labels], counts), pa.string())
                columns[name] = labels.dictionary_encode()
            columns.update(self._inputs.arrays())
        columns.update(self._outputs.arrays())
        metadata = {VERSION_KEY: str(FORMAT_VERSION).encode(), KIND_KEY: self.kind.value.encode()}
        return pa.table(columns).replace_schema_metadata(metadata)


def _as_frame(inputs: Any) -> Any:
    """``inputs`` as a DataFrame if it is one (or a list of records), else None."""
    if hasattr(inputs, "iloc") and hasattr(inputs, "columns"):
        return inputs
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], Mapping):
        import pandas as pd

        return pd.DataFrame.from_records(inputs)
    return None


def frame_columns(frame: Any) -> dict[str, NDArray[Any]]:
    """The ``input.<column>`` arrays of a DataFrame.

    ``frame.iloc[:, i]`` builds a Series (about 20 us a column, which adds up to most of the
    writer's time for one-row requests); pandas' ``_get_column_array`` returns the stored
    array directly (about 1 us), so it is used where it exists.
    """
    get = getattr(frame, "_get_column_array", None)
    if get is None:
        return {
            f"{INPUT_PREFIX}{name}": _series_values(frame.iloc[:, i])
            for i, name in enumerate(frame.columns)
        }
    return {f"{INPUT_PREFIX}{name}": _numpy(get(i)) for i, name in enumerate(frame.columns)}


def _repeat(values: list[str], counts: NDArray[Any]) -> NDArray[Any]:
    import numpy as np

    return np.repeat(np.asarray(values, dtype=object), counts)


def _timestamp(value: object) -> int:
    return check_ms(value, "timestamp_ms")


def stack_key(entry: PredictionEntry) -> tuple[Any, ...] | None:
    """What entries must share to be added together by :meth:`SegmentBuilder.add_predictions`
    (``None``: this entry is added on its own)."""
    inputs: Any = entry.inputs
    if type(inputs).__name__ != "ndarray" or inputs.ndim != 2:
        return None
    outputs = entry.outputs
    if not all(type(v).__name__ == "ndarray" and v.ndim >= 1 for v in outputs.values()):
        return None
    return (
        entry.model_name,
        entry.model_version,
        inputs.shape[1],
        inputs.dtype,
        entry.input_names,
        tuple((k, v.dtype, v.shape[1:]) for k, v in outputs.items()),
    )


def input_columns(
    inputs: Any, names: Sequence[str] | None = None
) -> tuple[int, dict[str, NDArray[Any]]]:
    """The number of rows and the ``input.<column>`` arrays of a request's inputs (``names``
    name the columns of a 2-D array; default ``0``, ``1``, ...)."""
    import numpy as np

    frame = _as_frame(inputs)
    if frame is not None:
        return len(frame), frame_columns(frame)
    if isinstance(inputs, Mapping):
        columns = {f"{INPUT_PREFIX}{k}": _rows_of(v) for k, v in inputs.items()}
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidArgument(
                f"input columns have different lengths {lengths}: every column of a request "
                "needs one value per row"
            )
        return next(iter(lengths.values()), 0), columns
    array = np.asarray(inputs)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    if array.ndim == 1:
        return len(array), {f"{INPUT_PREFIX}0": array}
    if array.ndim == 2:
        labels = names if names is not None and len(names) == array.shape[1] else None
        return len(array), {
            f"{INPUT_PREFIX}{labels[j] if labels else j}": array[:, j]
            for j in range(array.shape[1])
        }
    return len(array), {f"{INPUT_PREFIX}0": array.reshape(len(array), -1)}


def output_columns(outputs: Mapping[str, Any], n: int) -> dict[str, NDArray[Any]]:
    """The ``output.<method>`` arrays, each checked to have one row per input row."""
    columns = {}
    for method, value in outputs.items():
        values = _rows_of(value)
        if len(values) != n:
            raise InvalidArgument(
                f"output {method!r} has {len(values)} rows but the request has {n} input "
                "rows: log one output row per input row"
            )
        columns[f"{OUTPUT_PREFIX}{method}"] = values
    return columns


def ground_truth_values(ground_truth: Any) -> NDArray[Any]:
    """Ground truth as one value per row: a scalar is the value of row 0."""
    import numpy as np

    if isinstance(ground_truth, (str, bytes)) or np.ndim(ground_truth) == 0:
        return _rows_of([ground_truth])
    return _rows_of(ground_truth)


def _rows_of(value: Any) -> NDArray[Any]:
    import numpy as np

    if hasattr(value, "iloc") and hasattr(value, "dtype"):  # a pandas Series
        return _series_values(value)
    array = np.asarray(value)
    return array.reshape(1) if array.ndim == 0 else array


def _series_values(series: Any) -> NDArray[Any]:
    import numpy as np

    return series.to_numpy() if isinstance(series.dtype, np.dtype) else _numpy(series.array)


def _numpy(values: Any) -> NDArray[Any]:
    """A pandas column's values as NumPy; extension types (nullable ints, strings,
    categories) as objects with None for missing values."""
    import numpy as np

    if isinstance(values, np.ndarray):
        return values
    if isinstance(values.dtype, np.dtype):
        return values.to_numpy()  # type: ignore[no-any-return]
    return values.to_numpy(dtype=object, na_value=None)  # type: ignore[no-any-return]


def encode(table: pa.Table) -> bytes:
    """The table as zstd-compressed Parquet bytes."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def decode(data: bytes, *, digest: str = "") -> pa.Table:
    """A segment's table; InvalidState if it was written by a newer loopml."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    version = (table.schema.metadata or {}).get(VERSION_KEY, b"1")
    if int(version) > FORMAT_VERSION:
        raise InvalidState(
            f"prediction log segment {digest or '?'} has format version {int(version)}; this "
            f"loopml reads up to version {FORMAT_VERSION}: upgrade loopml to read it"
        )
    return table
