"""The request and response bodies of the scoring routes, as pure functions.

``/invocations`` speaks MLflow's scoring protocol: a JSON object with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, or a CSV body.
``/predict`` takes ``{"records": [...]}`` or a bare list of records. Each parser returns what
a :class:`~loopml.models.Predictor` accepts (a pandas DataFrame or a NumPy array) or raises
:class:`~loopml.errors.InvalidArgument` saying what a valid body looks like.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from loopml.errors import InvalidArgument
from loopml.models.enforce import Table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "INVOCATION_KEYS",
    "MEDIA_CSV",
    "MEDIA_JSON",
    "FeedbackItem",
    "dump_json",
    "json_output",
    "load_json",
    "media_type_of",
    "parse_csv",
    "parse_feedback",
    "parse_invocation",
    "parse_records",
    "to_json_values",
]

MEDIA_JSON = "application/json"
MEDIA_CSV = "text/csv"
INVOCATION_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def media_type_of(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (an absent header is JSON)."""
    if not content_type:
        return MEDIA_JSON
    return content_type.split(";", 1)[0].strip().lower()


def load_json(body: bytes) -> Any:
    """The JSON value in ``body``, or :class:`InvalidArgument` with the parser's complaint."""
    if not body.strip():
        raise InvalidArgument("the request body is empty; send a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the request body is not valid JSON: {exc}") from None


def parse_invocation(payload: Any) -> Table | pd.DataFrame | np.ndarray[Any, Any]:
    """The model input in an ``/invocations`` JSON body (MLflow's four input formats)."""

    if not isinstance(payload, Mapping):
        raise InvalidArgument(
            f"an /invocations JSON body must be an object with exactly one of "
            f"{_keys_text()}, got a JSON {_json_kind(payload)}"
        )
    given = [key for key in payload if key in INVOCATION_KEYS]
    unknown = sorted(str(key) for key in payload if key not in (*INVOCATION_KEYS, "params"))
    if unknown:
        raise InvalidArgument(
            f"unknown field(s) {', '.join(map(repr, unknown))} in the /invocations body; "
            f"valid fields are {_keys_text()}",
            fields=unknown,
        )
    if len(given) != 1:
        found = ", ".join(map(repr, given)) if given else "none of them"
        raise InvalidArgument(
            f"an /invocations body needs exactly one of {_keys_text()}, got {found}"
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split":
        return _dataframe_split(value)
    if key == "dataframe_records":
        if not _is_list_of_objects(value):
            raise InvalidArgument(
                "'dataframe_records' must be a non-empty list of objects such as "
                f'[{{"x": 1.0}}], got {_describe(value)}'
            )
        return _records(value)
    return _tensor_input(key, value)


def parse_records(payload: Any) -> Table | pd.DataFrame:
    """The model input in a ``/predict`` body: ``{"records": [...]}`` or a list of records."""

    records = payload.get("records") if isinstance(payload, Mapping) else payload
    if isinstance(payload, Mapping):
        extra = sorted(str(key) for key in payload if key != "records")
        if extra or "records" not in payload:
            raise InvalidArgument(
                '/predict takes {"records": [{...}, ...]} or a list of records; '
                f"got an object with field(s) {', '.join(map(repr, extra)) or 'none'}"
            )
    if not _is_list_of_objects(records):
        raise InvalidArgument(
            "/predict needs a non-empty list of records (objects mapping column to value), "
            f"got {_describe(records)}"
        )
    assert records is not None  # checked just above
    return _records(list(records))


def parse_csv(body: bytes) -> pd.DataFrame:
    """A ``text/csv`` body with a header row, as a DataFrame."""
    import io

    import pandas as pd

    if not body.strip():
        raise InvalidArgument("the CSV body is empty; send a header row and at least one row")
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except ValueError as exc:  # pandas' parser errors and bad encodings included
        raise InvalidArgument(f"the CSV body could not be parsed: {exc}") from None
    if frame.empty:
        raise InvalidArgument("the CSV body has a header but no rows; send at least one row")
    return frame


def to_json_values(output: Any) -> Any:
    """Model output as plain JSON values: arrays and Series become lists, frames records.

    Non-finite floats become ``null``, which every JSON parser reads.
    """
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        if len(output.columns) == 1:
            return to_json_values(output.iloc[:, 0].to_numpy())
        return [
            {str(k): _plain(v) for k, v in row.items()} for row in output.to_dict(orient="records")
        ]
    if isinstance(output, pd.Series):
        return to_json_values(output.to_numpy())
    if isinstance(output, np.ndarray):
        return _plain(output.tolist())
    if isinstance(output, Mapping):
        return {str(k): to_json_values(v) for k, v in output.items()}
    if isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
        return [_plain(v) for v in output]
    return _plain(output)


def json_output(output: Any) -> Any:
    """Model output ready for :func:`dump_json`: like :func:`to_json_values`, but a numeric
    NumPy array without NaN or infinity is passed through for orjson to write natively, instead
    of being copied into Python lists and walked element by element (the response hot path)."""
    kind = getattr(getattr(output, "dtype", None), "kind", "")
    if type(output).__name__ == "ndarray" and kind in "iubf" and kind:
        import numpy as np

        if kind != "f" or bool(np.isfinite(output).all()):
            return np.ascontiguousarray(output)
    return to_json_values(output)


def dump_json(value: Any) -> bytes:
    """``value`` as JSON bytes (NumPy values included)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=_fallback)


# -- helpers ---------------------------------------------------------------------------------
def _records(records: list[Any]) -> Table | pd.DataFrame:
    """Records with the same keys as a :class:`Table` (no pandas), others as a DataFrame."""
    table = Table.from_records(records)
    if table is not None:
        return table
    import pandas as pd

    return pd.DataFrame.from_records(records)


def _dataframe_split(value: Any) -> Table | pd.DataFrame:

    if not isinstance(value, Mapping) or "data" not in value:
        raise InvalidArgument(
            "'dataframe_split' must be an object with 'columns' and 'data' "
            f'(e.g. {{"columns": ["x"], "data": [[1.0]]}}), got {_describe(value)}'
        )
    data = value["data"]
    columns = value.get("columns")
    if not isinstance(data, list) or not data or not all(isinstance(r, list) for r in data):
        raise InvalidArgument(
            f"'dataframe_split.data' must be a non-empty list of rows, got {_describe(data)}"
        )
    if columns is not None:
        if not isinstance(columns, list):
            raise InvalidArgument(
                f"'dataframe_split.columns' must be a list of names, got {_describe(columns)}"
            )
        widths = sorted({len(row) for row in data})
        if widths != [len(columns)]:
            raise InvalidArgument(
                f"'dataframe_split' has {len(columns)} column(s) but rows of length "
                f"{', '.join(map(str, widths))}; every row needs one value per column"
            )
        if value.get("index") is None and all(isinstance(c, str) for c in columns):
            return Table(tuple(columns), data)
    import pandas as pd  # only for an index or non-text column names

    try:
        return pd.DataFrame(data, columns=columns, index=value.get("index"))
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"'dataframe_split' is not a valid table: {exc}") from None


def _tensor_input(key: str, value: Any) -> pd.DataFrame | np.ndarray[Any, Any]:
    """``instances``/``inputs``: rows of numbers, records, or a mapping of column to values."""
    import numpy as np
    import pandas as pd

    if _is_list_of_objects(value):
        return _records(value)
    if isinstance(value, Mapping) and value:
        try:
            return pd.DataFrame({str(k): v for k, v in value.items()})
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"{key!r} as an object must map each column to a list of equal length: {exc}"
            ) from None
    if isinstance(value, list) and value:
        try:
            array = np.asarray(value)
        except ValueError as exc:  # ragged rows
            raise InvalidArgument(
                f"{key!r} must be a rectangular list of rows (every row the same length): {exc}"
            ) from None
        if array.dtype == object:
            raise InvalidArgument(
                f"{key!r} must be a rectangular list of rows of numbers or strings"
            )
        return array
    raise InvalidArgument(
        f"{key!r} must be a non-empty list of rows, a list of records or an object of "
        f"columns, got {_describe(value)}"
    )


def _is_list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalar
        return _plain(value.item())
    return value


def _fallback(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _keys_text() -> str:
    return ", ".join(repr(key) for key in INVOCATION_KEYS)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "object"


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {_json_kind(value[0])}s"
    return f"a JSON {_json_kind(value)}"


# -- /feedback -------------------------------------------------------------------------------
class FeedbackItem(NamedTuple):
    """Ground truth for the prediction answered under ``request_id`` (one value per row, or a
    single value for a one-row request); ``model`` is needed only when several are served."""

    request_id: str
    ground_truth: Any
    model: str | None


_FEEDBACK_SHAPE = (
    '{"request_id": "...", "ground_truth": <value or list, one per row>, "model"?: "name"} or '
    '{"feedback": [<such objects>, ...]}'
)


def parse_feedback(payload: Any) -> list[FeedbackItem]:
    """The feedback items of a ``/feedback`` body (one object, or ``{"feedback": [...]}``)."""
    if isinstance(payload, Mapping) and "feedback" in payload:
        extra = sorted(str(key) for key in payload if key != "feedback")
        items = payload["feedback"]
        if extra or not isinstance(items, list) or not items:
            raise InvalidArgument(
                f"/feedback takes {_FEEDBACK_SHAPE}; 'feedback' must be a non-empty list and "
                f"alone, got {_describe(items)}" + (f" with {', '.join(extra)}" if extra else "")
            )
        return [_feedback_item(item, f"feedback[{i}]") for i, item in enumerate(items)]
    return [_feedback_item(payload, "the body")]


def _feedback_item(value: Any, where: str) -> FeedbackItem:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where} must be an object: {_FEEDBACK_SHAPE}")
    unknown = sorted(str(k) for k in value if k not in ("request_id", "ground_truth", "model"))
    if unknown:
        raise InvalidArgument(
            f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; valid fields are "
            "'request_id', 'ground_truth' and 'model'"
        )
    request_id = value.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidArgument(
            f"{where} needs 'request_id', the X-Request-Id of the prediction (a non-empty "
            f"string), got {_describe(request_id)}"
        )
    if "ground_truth" not in value or value["ground_truth"] is None:
        raise InvalidArgument(
            f"{where} needs 'ground_truth': the true value (or a list with one per row) for "
            f"request {request_id!r}"
        )
    truth = value["ground_truth"]
    if isinstance(truth, Mapping) or (
        isinstance(truth, list)
        and (not truth or any(isinstance(t, (list, Mapping)) for t in truth))
    ):
        raise InvalidArgument(
            f"{where}: 'ground_truth' must be a number, string or boolean, or a non-empty list "
            f"of them (one per row), got {_describe(truth)}"
        )
    model = value.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidArgument(f"{where}: 'model' must be a model name, got {_describe(model)}")
    return FeedbackItem(request_id, truth, model)
