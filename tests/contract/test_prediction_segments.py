"""The prediction segment registry contract: every store backend passes these same tests."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from loopml.core.prediction_log import PredictionSegment, SegmentKind
from loopml.errors import AlreadyExists, InvalidArgument
from loopml.store.base import MetadataStore


def _segment(
    first_ms: int,
    last_ms: int,
    *,
    model_name: str = "churn",
    model_version: str = "1",
    kind: SegmentKind = SegmentKind.PREDICTIONS,
    row_count: int = 10,
) -> PredictionSegment:
    return PredictionSegment(
        segment_id=uuid.uuid4().hex,
        model_name=model_name,
        model_version=model_version,
        kind=kind,
        digest=uuid.uuid4().hex * 2,
        row_count=row_count,
        first_ms=first_ms,
        last_ms=last_ms,
        created_ms=last_ms + 5,
        writer="host-a:123",
    )


def test_segments_round_trip_every_field(store: MetadataStore) -> None:
    segment = _segment(1_700_000_000_000, 1_700_000_002_000, row_count=50_000)
    store.add_prediction_segment(segment)
    assert store.list_prediction_segments("churn") == [segment]


def test_segments_are_listed_by_first_ms_and_filtered_by_kind_and_version(
    store: MetadataStore,
) -> None:
    late = _segment(300, 400)
    early = _segment(100, 200, model_version="2")
    feedback = _segment(150, 160, kind=SegmentKind.FEEDBACK)
    other_model = _segment(50, 60, model_name="fraud")
    for s in (late, early, feedback, other_model):
        store.add_prediction_segment(s)

    assert store.list_prediction_segments("churn") == [early, feedback, late]
    assert store.list_prediction_segments("churn", kind="predictions") == [early, late]
    assert store.list_prediction_segments("churn", kind=SegmentKind.FEEDBACK) == [feedback]
    assert store.list_prediction_segments("churn", model_version="2") == [early]
    assert store.list_prediction_segments("fraud") == [other_model]
    assert store.list_prediction_segments("nobody") == []


def test_a_window_selects_segments_overlapping_start_inclusive_end_exclusive(
    store: MetadataStore,
) -> None:
    a = _segment(100, 199)
    b = _segment(200, 299)
    c = _segment(300, 399)
    for s in (a, b, c):
        store.add_prediction_segment(s)

    def ids(**window: int) -> list[str]:
        return [s.segment_id for s in store.list_prediction_segments("churn", **window)]

    assert ids(start_ms=199, end_ms=300) == [a.segment_id, b.segment_id]
    assert ids(start_ms=200, end_ms=300) == [b.segment_id]
    assert ids(start_ms=250) == [b.segment_id, c.segment_id]
    assert ids(end_ms=200) == [a.segment_id]
    assert ids(start_ms=400) == []
    assert ids(start_ms=250, end_ms=250) == []


def test_a_segment_id_is_registered_once(store: MetadataStore) -> None:
    segment = _segment(1, 2)
    store.add_prediction_segment(segment)
    with pytest.raises(AlreadyExists, match=segment.segment_id):
        store.add_prediction_segment(dataclasses.replace(segment, row_count=99))
    assert [s.row_count for s in store.list_prediction_segments("churn")] == [10]


def test_unknown_kinds_are_refused_naming_the_valid_ones(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match=r"'labels'.*'predictions', 'feedback'"):
        store.list_prediction_segments("churn", kind="labels")
    bad = dataclasses.replace(_segment(1, 2), kind="labels")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="'labels'"):
        store.add_prediction_segment(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"first_ms": 10, "last_ms": 5}, "last_ms 5 is before first_ms 10"),
        ({"digest": "abc"}, "invalid segment digest 'abc'"),
        ({"row_count": -1}, "invalid row_count -1"),
        ({"model_name": ""}, "invalid model name ''"),
        ({"segment_id": "a/b"}, "invalid segment id 'a/b'"),
        ({"first_ms": "now"}, "invalid first_ms 'now'"),
    ],
)
def test_malformed_segments_are_refused_and_not_stored(
    store: MetadataStore, change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.add_prediction_segment(dataclasses.replace(_segment(1, 2), **change))  # type: ignore[arg-type]
    assert store.list_prediction_segments("churn") == []


def test_a_window_that_ends_before_it_starts_is_refused(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="end_ms 5 is before start_ms 10"):
        store.list_prediction_segments("churn", start_ms=10, end_ms=5)
