"""Prediction log entities: the Parquet segments a model server writes, as the store sees them.

A segment holds the rows of many requests (or of many feedback messages) of one model
version; its bytes live in the artifact store under ``digest``, its metadata in the store.
"""

from __future__ import annotations

import enum
import operator
import re
from dataclasses import dataclass

from loopml.errors import InvalidArgument

MAX_NAME_LENGTH = 250
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_SEGMENT_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class SegmentKind(enum.StrEnum):
    PREDICTIONS = "predictions"
    FEEDBACK = "feedback"


_KINDS = frozenset(k.value for k in SegmentKind)


@dataclass(frozen=True, slots=True)
class PredictionSegment:
    """One Parquet segment of the prediction log; ``first_ms``/``last_ms`` bound its rows."""

    segment_id: str
    model_name: str
    model_version: str
    kind: SegmentKind
    digest: str  # artifact store key of the Parquet bytes
    row_count: int
    first_ms: int
    last_ms: int
    created_ms: int
    writer: str  # who wrote it, e.g. host:pid


def check_segment_kind(kind: object) -> SegmentKind:
    """``kind`` as a :class:`SegmentKind`; InvalidArgument names the valid kinds."""
    if isinstance(kind, str) and kind in _KINDS:
        return SegmentKind(kind)
    valid = ", ".join(repr(k.value) for k in SegmentKind)
    raise InvalidArgument(f"invalid prediction segment kind {kind!r}: must be one of {valid}")


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """A string of at most 250 characters (non-empty unless ``allow_empty``)."""
    if not isinstance(value, str) or (not value and not allow_empty):
        rule = "a string" if allow_empty else "a non-empty string"
        raise InvalidArgument(f"invalid {what} {value!r}: must be {rule}")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"invalid {what} {value[:40]!r}...: {len(value)} characters, at most "
            f"{MAX_NAME_LENGTH} allowed"
        )
    return value


def check_ms(value: object, what: str) -> int:
    """A time or count in integer milliseconds (numpy integers accepted)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(
            f"invalid {what} {value!r}: must be integer milliseconds since the epoch"
        ) from None


def check_takeover_times(stale_before_ms: object, now_ms: object) -> tuple[int, int]:
    """The two times of a lease take-over (a heartbeat before ``stale_before_ms`` is dead; the
    taker's heartbeat is ``now_ms``), checked: the new heartbeat must not itself look stale, or
    two racing callers could both win."""
    stale = check_ms(stale_before_ms, "stale_before_ms")
    now = check_ms(now_ms, "now_ms")
    if now < stale:
        raise InvalidArgument(f"invalid now_ms {now}: must not be before stale_before_ms {stale}")
    return stale, now


def check_window(start_ms: object, end_ms: object) -> tuple[int | None, int | None]:
    """Validate an optional ``[start_ms, end_ms)`` window."""
    start = None if start_ms is None else check_ms(start_ms, "start_ms")
    end = None if end_ms is None else check_ms(end_ms, "end_ms")
    if start is not None and end is not None and end < start:
        raise InvalidArgument(
            f"invalid time window: end_ms {end} is before start_ms {start}; "
            "give end_ms >= start_ms (the window is [start_ms, end_ms))"
        )
    return start, end


def check_segment(segment: PredictionSegment) -> PredictionSegment:
    """Validate every field of a segment before it is stored."""
    if not isinstance(segment, PredictionSegment):
        raise InvalidArgument(
            f"expected a PredictionSegment, got {type(segment).__name__}: build one with "
            "PredictionSegment(segment_id=..., model_name=..., ...)"
        )
    if not isinstance(segment.segment_id, str) or not _SEGMENT_ID_RE.fullmatch(segment.segment_id):
        raise InvalidArgument(
            f"invalid segment id {segment.segment_id!r}: 1 to 64 characters from letters, "
            "digits, '_' and '-'"
        )
    check_text(segment.model_name, "model name")
    check_text(segment.model_version, "model version", allow_empty=True)
    check_segment_kind(segment.kind)
    if not isinstance(segment.digest, str) or not _DIGEST_RE.fullmatch(segment.digest):
        raise InvalidArgument(
            f"invalid segment digest {segment.digest!r}: must be the 64 lowercase hex "
            "characters of a SHA-256 artifact digest"
        )
    count = segment.row_count
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"invalid row_count {count!r}: must be a whole number >= 0")
    first = check_ms(segment.first_ms, "first_ms")
    last = check_ms(segment.last_ms, "last_ms")
    if last < first:
        raise InvalidArgument(
            f"invalid segment time range: last_ms {last} is before first_ms {first}; "
            "they bound the rows' timestamps, so first_ms <= last_ms"
        )
    check_ms(segment.created_ms, "created_ms")
    check_text(segment.writer, "segment writer", allow_empty=True)
    return segment
