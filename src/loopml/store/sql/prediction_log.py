"""The prediction log half of ``SqlStore``: the registry of Parquet segments."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa

from loopml.core.prediction_log import (
    PredictionSegment,
    SegmentKind,
    check_segment,
    check_segment_kind,
    check_text,
    check_window,
)
from loopml.errors import AlreadyExists
from loopml.store.sql import schema as t


class PredictionLogMixin(abc.ABC):
    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[sa.Connection]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def add_prediction_segment(self, segment: PredictionSegment) -> None:
        s = check_segment(segment)
        try:
            with self._write() as conn:
                conn.execute(
                    t.prediction_segments.insert().values(
                        segment_id=s.segment_id,
                        model_name=s.model_name,
                        model_version=s.model_version,
                        kind=check_segment_kind(s.kind).value,
                        digest=s.digest,
                        row_count=s.row_count,
                        first_ms=int(s.first_ms),
                        last_ms=int(s.last_ms),
                        created_ms=int(s.created_ms),
                        writer=s.writer,
                    )
                )
        except sa.exc.IntegrityError:  # the primary key is the only constraint
            raise AlreadyExists(
                f"prediction segment {s.segment_id!r} is already registered: segment ids are "
                "unique (generate a new one for new data)",
                segment_id=s.segment_id,
            ) from None

    def list_prediction_segments(
        self,
        model_name: str,
        *,
        kind: SegmentKind | str | None = None,
        model_version: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[PredictionSegment]:
        check_text(model_name, "model name")
        start, end = check_window(start_ms, end_ms)
        ps = t.prediction_segments.c
        query = sa.select(t.prediction_segments).where(ps.model_name == model_name)
        if kind is not None:
            query = query.where(ps.kind == check_segment_kind(kind).value)
        if model_version is not None:
            query = query.where(
                ps.model_version == check_text(model_version, "model version", allow_empty=True)
            )
        if start is not None and start == end:
            return []  # an empty window overlaps nothing
        if start is not None:
            query = query.where(ps.last_ms >= start)
        if end is not None:
            query = query.where(ps.first_ms < end)
        with self._read() as conn:
            rows = conn.execute(query.order_by(ps.first_ms, ps.segment_id)).all()
        return [_segment(row) for row in rows]


def _segment(row: sa.Row[Any]) -> PredictionSegment:
    return PredictionSegment(
        segment_id=row.segment_id,
        model_name=row.model_name,
        model_version=row.model_version,
        kind=SegmentKind(row.kind),
        digest=row.digest,
        row_count=row.row_count,
        first_ms=row.first_ms,
        last_ms=row.last_ms,
        created_ms=row.created_ms,
        writer=row.writer,
    )
