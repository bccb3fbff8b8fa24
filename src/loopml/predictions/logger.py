"""``PredictionLogger``: the model server's request log, written off the hot path.

:meth:`PredictionLogger.log` only appends the entry to a bounded queue (a deque: no lock and
no thread wake-up per entry); a full queue refuses it (and counts it) instead of slowing the
server down. One background thread wakes every few tens of milliseconds, takes everything
queued at once, turns entries into
rows, grouped by (model name, model version, kind), and writes a Parquet segment when a group
reaches ``segment_rows`` rows or its first entry has waited ``flush_interval_s``. A segment's
bytes go to the artifact store first and are registered in the metadata store only then, so a
registered segment always has its data. A failed write is retried with backoff, then counted
in ``write_errors`` and logged; the thread itself never stops on an error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.entities import now_ms
from loopml.core.prediction_log import PredictionSegment, SegmentKind, check_text
from loopml.errors import AlreadyExists, InvalidArgument, InvalidState
from loopml.predictions.entries import FeedbackEntry, LoggerStats, PredictionEntry

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.predictions.segments import SegmentBuilder
    from loopml.store.base import MetadataStore
    from loopml.tracking.client import Client

__all__ = ["PredictionLogger"]

log = logging.getLogger("loopml.predictions")

_GroupKey = tuple[str, str, SegmentKind]
_POLL_S = 0.05  # how often the writer takes what was queued


class _Flush:
    """A marker on the queue: everything before it is written when ``done`` is set."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool) -> None:
        self.done = threading.Event()
        self.stop = stop


@dataclass(slots=True)
class _Group:
    builder: SegmentBuilder
    due: float  # monotonic time at which the group is written, full or not


class PredictionLogger:
    """Logs every answered request and later ground truth as Parquet segments.

    Build it, :meth:`start` it, call :meth:`log` / :meth:`log_feedback` from request
    handlers, and :meth:`close` it on shutdown (it flushes). ``retries`` failed attempts of a
    segment write are retried after 0.2 s, 0.4 s, 0.8 s, ... before the segment is given up.
    """

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        *,
        max_queue: int = 10_000,
        segment_rows: int = 50_000,
        flush_interval_s: float = 2.0,
        writer_id: str | None = None,
        retries: int = 3,
    ) -> None:
        _check_count(max_queue, "max_queue", 1)
        _check_count(segment_rows, "segment_rows", 1)
        _check_count(retries, "retries", 0)
        if (
            isinstance(flush_interval_s, bool)
            or not isinstance(flush_interval_s, (int, float))
            or not 0 < flush_interval_s < math.inf
        ):
            raise InvalidArgument(
                f"invalid flush_interval_s {flush_interval_s!r}: must be a number of seconds > 0"
            )
        self._store = store
        self._artifacts = artifacts
        self._segment_rows = segment_rows
        self._flush_interval_s = float(flush_interval_s)
        self._retries = retries
        self.writer_id = (
            check_text(writer_id, "writer_id")
            if writer_id is not None
            else f"{socket.gethostname()}:{os.getpid()}"
        )
        self._max_queue = max_queue
        self._pending: deque[PredictionEntry | FeedbackEntry | _Flush] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # start, flush without a thread, close
        self._drop_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._groups: dict[_GroupKey, _Group] = {}
        self._dropped = 0
        self._invalid = 0
        self._rows = 0
        self._segments = 0
        self._write_errors = 0

    @classmethod
    def from_client(cls, client: Client, **options: Any) -> PredictionLogger:
        """A logger over the client's metadata store and default artifact store."""
        return cls(client.store, client.artifact_store(), **options)

    # -- the hot path ------------------------------------------------------------------------
    def log(self, entry: PredictionEntry) -> bool:
        """Queue an answered request; False (and counted) if the queue is full or closed."""
        pending = self._pending
        if not self._closed and len(pending) < self._max_queue:
            pending.append(entry)  # atomic; the writer takes it on its next round
            return True
        with self._drop_lock:
            self._dropped += 1
        return False

    def log_feedback(self, entry: FeedbackEntry) -> bool:
        """Queue ground truth for an earlier request; False (and counted) if it cannot."""
        pending = self._pending
        if not self._closed and len(pending) < self._max_queue:
            pending.append(entry)
            return True
        with self._drop_lock:
            self._dropped += 1
        return False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (once; calling again does nothing)."""
        with self._lock:
            if self._closed:
                raise InvalidState("this PredictionLogger is closed: build a new one to log again")
            if self._thread is None:
                _warm_up()
                self._thread = threading.Thread(
                    target=self._run, name="loopml-prediction-log", daemon=True
                )
                self._thread.start()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Write and register everything logged before this call.

        Write failures do not raise (they are counted in ``write_errors``); not finishing
        within ``timeout_s`` raises InvalidState. Without a running thread the caller writes.
        """
        with self._lock:
            if not self._thread_alive():
                self._write_queued()
                return
        deadline = time.monotonic() + timeout_s
        marker = _Flush(stop=False)
        self._put_marker(marker, timeout_s)
        if not marker.done.wait(max(0.0, deadline - time.monotonic())):
            raise InvalidState(
                f"the prediction log was not flushed within {timeout_s} s "
                f"({len(self._pending)} entries still queued); give a longer timeout_s"
            )

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, then stop the writer thread; later entries are refused. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            deadline = time.monotonic() + timeout_s
            try:
                self._put_marker(_Flush(stop=True), timeout_s)
                thread.join(max(0.0, deadline - time.monotonic()))
            except InvalidState:
                pass
            if thread.is_alive():
                log.warning(
                    "prediction log: the writer did not finish within %s s; %d queued "
                    "entries were not written",
                    timeout_s,
                    len(self._pending),
                )
                return
        with self._lock:  # entries that raced with close, or a logger never started
            self._write_queued()

    def __enter__(self) -> PredictionLogger:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> LoggerStats:
        return LoggerStats(
            logged_rows=self._rows,
            dropped_entries=self._dropped,
            segments_written=self._segments,
            write_errors=self._write_errors,
            queue_depth=len(self._pending),
            invalid_entries=self._invalid,
        )

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _put_marker(self, marker: _Flush, timeout_s: float) -> None:
        del timeout_s  # a marker always fits: the queue bound is for entries
        self._pending.append(marker)
        self._wake.set()

    # -- the writer --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            due = self._seconds_to_next_due()
            self._wake.wait(_POLL_S if due is None else min(_POLL_S, due))
            self._wake.clear()
            try:
                if self._drain():
                    return
                self._write_groups(due_only=True)
            except Exception:  # never let the thread die: the server must keep serving
                log.exception("prediction log: unexpected error in the writer thread")

    def _drain(self) -> bool:
        """Take everything queued; at a flush marker write every group. True on a stop.

        Consecutive predictions of one model version with inputs and outputs of the same
        shape are added to their segment in one go (see ``SegmentBuilder.add_predictions``).
        """
        from loopml.predictions.segments import stack_key

        pending = self._pending
        run: list[PredictionEntry] = []
        run_key: tuple[Any, ...] | None = None
        while True:
            try:
                item = pending.popleft()
            except IndexError:
                self._add_run(run)
                return False
            if isinstance(item, PredictionEntry):
                key = stack_key(item)
                if key is not None and key == run_key:
                    run.append(item)
                    continue
                self._add_run(run)
                run, run_key = ([item], key) if key is not None else ([], None)
                if key is None:
                    self._add(item)
                continue
            self._add_run(run)
            run, run_key = [], None
            if isinstance(item, _Flush):
                try:
                    self._write_groups(due_only=False)
                finally:
                    item.done.set()
                if item.stop:
                    return True
            else:
                self._add(item)

    def _add_run(self, run: list[PredictionEntry]) -> None:
        if len(run) < 2:
            for entry in run:
                self._add(entry)
            return
        first = run[0]
        try:
            key = (
                check_text(first.model_name, "model name"),
                check_text(first.model_version, "model version", allow_empty=True),
                SegmentKind.PREDICTIONS,
            )
            group = self._group(key)
            group.builder.add_predictions(run)
        except Exception:  # one bad entry: add them one by one, so only it is refused
            for entry in run:
                self._add(entry)
            return
        if group.builder.rows >= self._segment_rows:
            self._write_group(key)

    def _group(self, key: _GroupKey) -> _Group:
        from loopml.predictions.segments import SegmentBuilder

        group = self._groups.get(key)
        if group is None:
            due = time.monotonic() + self._flush_interval_s
            group = self._groups[key] = _Group(SegmentBuilder(key[2]), due)
        return group

    def _write_queued(self) -> None:
        """Write everything queued and buffered, in the calling thread."""
        while self._drain():  # a stop marker ends a drain early: go on past it
            pass
        self._write_groups(due_only=False)

    def _seconds_to_next_due(self) -> float | None:
        if not self._groups:
            return None
        due = min(g.due for g in self._groups.values())
        return max(0.0, due - time.monotonic())

    def _add(self, entry: PredictionEntry | FeedbackEntry) -> None:
        feedback = isinstance(entry, FeedbackEntry)
        try:
            key = (
                check_text(entry.model_name, "model name"),
                check_text(entry.model_version, "model version", allow_empty=True),
                SegmentKind.FEEDBACK if feedback else SegmentKind.PREDICTIONS,
            )
            group = self._group(key)
            if isinstance(entry, FeedbackEntry):
                group.builder.add_feedback(entry)
            else:
                group.builder.add_prediction(entry)
        except Exception as exc:
            self._invalid += 1
            if self._invalid % 1000 == 1:
                log.warning(
                    "prediction log: entry %r could not be logged (%s); %d such entries so far",
                    getattr(entry, "request_id", entry),
                    exc,
                    self._invalid,
                )
            return
        if group.builder.rows >= self._segment_rows:
            self._write_group(key)

    def _write_groups(self, *, due_only: bool) -> None:
        now = time.monotonic()
        for key in [k for k, g in self._groups.items() if not due_only or g.due <= now]:
            self._write_group(key)

    def _write_group(self, key: _GroupKey) -> None:
        from loopml.predictions.segments import encode

        builder = self._groups.pop(key).builder
        if builder.rows == 0 or builder.first_ms is None or builder.last_ms is None:
            return
        try:
            data = encode(builder.to_table())
        except Exception:
            self._write_errors += 1
            log.exception(
                "prediction log: cannot encode a segment of %d rows of %r", builder.rows, key[0]
            )
            return
        segment_id = uuid.uuid4().hex
        for attempt in range(self._retries + 1):
            try:
                ref = self._artifacts.put_bytes(data, name=f"{segment_id}.parquet")
                segment = PredictionSegment(
                    segment_id=segment_id,
                    model_name=key[0],
                    model_version=key[1],
                    kind=key[2],
                    digest=ref.digest,
                    row_count=builder.rows,
                    first_ms=builder.first_ms,
                    last_ms=builder.last_ms,
                    created_ms=now_ms(),
                    writer=self.writer_id,
                )
                # AlreadyExists: an earlier attempt registered it, then failed to say so.
                with contextlib.suppress(AlreadyExists):
                    self._store.add_prediction_segment(segment)
            except Exception as exc:
                if attempt < self._retries:
                    time.sleep(0.2 * 2**attempt)
                    continue
                self._write_errors += 1
                log.error(
                    "prediction log: lost a %s segment of %d rows of model %r version %r "
                    "after %d attempts: %s",
                    key[2].value,
                    builder.rows,
                    key[0],
                    key[1],
                    attempt + 1,
                    exc,
                )
                return
            self._segments += 1
            self._rows += builder.rows
            return


def _check_count(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"invalid {name} {value!r}: must be a whole number >= {minimum}")


def _warm_up() -> None:
    """Import and exercise what the writer uses, now, in the starting thread: a first segment
    written while serving would otherwise import pyarrow's Parquet writer in the writer thread,
    holding the GIL (and so every request) for a few hundred milliseconds."""
    import numpy as np

    from loopml.predictions.segments import SegmentBuilder, encode

    builder = SegmentBuilder(SegmentKind.PREDICTIONS)
    builder.add_prediction(
        PredictionEntry(
            request_id="warm-up",
            model_name="warm-up",
            model_version="",
            role="primary",
            timestamp_ms=0,
            latency_ms=0.0,
            inputs=np.zeros((1, 1)),
            outputs={"predict": np.zeros(1)},
            protocol="warm-up",
        )
    )
    encode(builder.to_table())
