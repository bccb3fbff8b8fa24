"""Reading the prediction log back as pandas DataFrames, predictions joined with ground truth.

Only the segments whose time range overlaps the window are fetched; their rows are then
filtered to ``start_ms <= timestamp_ms < end_ms``. Columns follow
:mod:`loopml.predictions.segments`; string labels come back as plain strings and list
outputs (``output.predict_proba``) as one array per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.core.prediction_log import PredictionSegment, SegmentKind, check_text, check_window
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from loopml.artifacts import ArtifactStore
    from loopml.store.base import MetadataStore

__all__ = ["read_feedback", "read_predictions"]

# Feedback is posted after its prediction, but possibly to another replica whose clock is
# behind: feedback this much older than the window start is still considered for the join.
FEEDBACK_CLOCK_SLACK_MS = 60_000
_ROLES = ("primary", "shadow")
_JOIN_KEYS = ["request_id", "row"]


def read_predictions(
    store: MetadataStore,
    artifacts: ArtifactStore,
    model_name: str,
    *,
    model_version: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    role: str | None = "primary",
    with_feedback: bool = True,
) -> pd.DataFrame:
    """Logged predictions of a model in ``[start_ms, end_ms)``, ordered by timestamp.

    ``role=None`` keeps primary and shadow rows. With feedback, ``ground_truth`` and
    ``feedback_ms`` are joined on (request_id, row): the latest feedback wins, rows without
    any get nulls.
    """
    check_text(model_name, "model name")
    start, end = check_window(start_ms, end_ms)
    if role is not None and role not in _ROLES:
        raise InvalidArgument(
            f"invalid role {role!r}: must be one of {', '.join(map(repr, _ROLES))} or None (all)"
        )
    segments = store.list_prediction_segments(
        model_name,
        kind=SegmentKind.PREDICTIONS,
        model_version=model_version,
        start_ms=start,
        end_ms=end,
    )
    table = _read_rows(artifacts, segments, _prediction_schema(), start, end)
    if role is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table["role"], role))
    frame = _ordered_frame(table)
    if not with_feedback:
        return frame
    feedback_start = None if start is None else start - FEEDBACK_CLOCK_SLACK_MS
    feedback = read_feedback(store, artifacts, model_name, start_ms=feedback_start)
    return _join_feedback(frame, feedback)


def read_feedback(
    store: MetadataStore,
    artifacts: ArtifactStore,
    model_name: str,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pd.DataFrame:
    """Every ground truth row logged for a model in ``[start_ms, end_ms)``, by timestamp.

    All versions are included (ground truth belongs to the request, whichever version
    answered it); repeated feedback for a row is kept here, the join keeps the latest.
    """
    check_text(model_name, "model name")
    start, end = check_window(start_ms, end_ms)
    segments = store.list_prediction_segments(
        model_name, kind=SegmentKind.FEEDBACK, start_ms=start, end_ms=end
    )
    return _ordered_frame(_read_rows(artifacts, segments, _feedback_schema(), start, end))


def _prediction_schema() -> pa.Schema:
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [
            ("request_id", text),
            ("row", pa.int32()),
            ("timestamp_ms", pa.int64()),
            ("latency_ms", pa.float64()),
            ("model_name", text),
            ("model_version", text),
            ("role", text),
            ("protocol", text),
        ]
    )


def _feedback_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("row", pa.int32()),
            ("timestamp_ms", pa.int64()),
            ("ground_truth", pa.null()),
        ]
    )


def _read_rows(
    artifacts: ArtifactStore,
    segments: Sequence[PredictionSegment],
    empty: pa.Schema,
    start: int | None,
    end: int | None,
) -> pa.Table:
    """The segments' rows in the window, as one table (``empty``'s columns if none)."""
    import pyarrow.compute as pc

    from loopml.predictions.segments import decode

    tables = [
        _plain_strings(decode(artifacts.read_bytes(s.digest), digest=s.digest)) for s in segments
    ]
    if not tables:
        return empty.empty_table()
    table = _concat(tables)
    ts = table["timestamp_ms"]
    if start is not None:
        table = table.filter(pc.greater_equal(ts, start))
        ts = table["timestamp_ms"]
    if end is not None:
        table = table.filter(pc.less(ts, end))
    return table


def _plain_strings(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as their plain values."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            column = table.column(i).cast(field.type.value_type)
            table = table.set_column(i, field.name, column)
    return table.replace_schema_metadata(None)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """One table; missing columns are null, differing types widened (else kept as text)."""
    import pyarrow as pa

    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[Any]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add(field.type)
    clashing = {name for name, found in types.items() if len(found - {pa.null()}) > 1}
    as_text = []
    for t in tables:
        for name in clashing & set(t.column_names):
            i = t.schema.get_field_index(name)
            values = [None if v is None else str(v) for v in t.column(i).to_pylist()]
            t = t.set_column(i, name, pa.array(values, pa.string()))
        as_text.append(t)
    return pa.concat_tables(as_text, promote_options="permissive")


def _ordered_frame(table: pa.Table) -> pd.DataFrame:
    """The rows as a DataFrame, stably sorted by timestamp."""
    frame = table.to_pandas()
    return frame.sort_values("timestamp_ms", kind="stable").reset_index(drop=True)


def _join_feedback(frame: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    latest = (
        feedback.drop_duplicates(_JOIN_KEYS, keep="last")  # sorted by time: last is latest
        .rename(columns={"timestamp_ms": "feedback_ms"})
        .loc[:, [*_JOIN_KEYS, "ground_truth", "feedback_ms"]]
    )
    joined = frame.merge(latest, on=_JOIN_KEYS, how="left", sort=False)
    joined["feedback_ms"] = joined["feedback_ms"].astype("Int64")
    return joined
