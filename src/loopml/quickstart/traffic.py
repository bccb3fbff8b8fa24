"""Traffic for the quickstart's server: requests whose population shifts, each followed by
its ground truth on ``/feedback``.

A few client threads share one schedule. Request ``i`` is due ``i / rate`` seconds after the
start and carries a few rows; each row comes from the shifted population with probability
``Schedule.shifted_share(i)``: 0 for the first ``steady`` requests, then rising to 1 over the
next ``ramp`` requests, then 1. Each request sends its own ``X-Request-Id``; as soon as the
answer arrives its labels are posted to ``/feedback`` under that id, as a hospital would once
the biopsy results are in. The traffic ends ``after_swap`` requests after a version other
than the first one answered, after ``max_s`` seconds, or when stopped.

Only the standard library speaks HTTP here; NumPy draws the rows.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loopml.errors import InvalidArgument
from loopml.quickstart.scenario import TARGET

if TYPE_CHECKING:
    from loopml.quickstart.scenario import Scenario

__all__ = ["Answer", "Schedule", "Traffic", "TrafficStats"]


@dataclass(frozen=True)
class Schedule:
    """When requests are sent and what they hold."""

    rate: float = 50.0  # requests per second, all clients together
    rows: int = 4  # rows per request
    steady: int = 150  # requests from the first population only
    ramp: int = 40  # requests over which the shifted share rises from 0 to 1
    after_swap: int = 300  # requests sent once a new version answered
    max_s: float = 75.0  # the traffic ends after this long whatever happened
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rate", "max_s"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidArgument(f"invalid schedule {name} {value!r}: must be > 0")
        for name in ("rows", "ramp"):
            value = getattr(self, name)
            if value < 1:
                raise InvalidArgument(f"invalid schedule {name} {value!r}: must be >= 1")
        for name in ("steady", "after_swap"):
            value = getattr(self, name)
            if value < 0:
                raise InvalidArgument(f"invalid schedule {name} {value!r}: must be >= 0")

    def shifted_share(self, index: int) -> float:
        """The chance that a row of request ``index`` comes from the shifted population."""
        if index < self.steady:
            return 0.0
        return min(1.0, (index - self.steady + 1) / self.ramp)


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it went and came back, who answered, how many rows were right."""

    index: int
    sent_s: float  # time.monotonic() when sent
    answered_s: float  # ... and when the answer (or the failure) came back
    status: int  # HTTP status, 0 when the connection failed
    version: str  # X-Model-Version, "" on failure
    rows: int
    shifted: int  # rows from the shifted population
    correct: int  # rows predicted right
    shifted_correct: int
    feedback_ok: bool

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class TrafficStats:
    """A snapshot for the progress display."""

    sent: int
    answered: int
    failed: int
    failed_feedback: int
    share: float  # the shifted share of the last request sent
    versions: dict[str, int]
    first_shift_s: float | None  # when the first shifted row was sent
    first_shift_index: int | None  # in which request
    swap: Answer | None  # the first answer of a version other than the first one
    done: bool
    planned: int | None  # the total number of requests, once known


@dataclass
class _State:
    next_index: int = 0
    last_share: float = 0.0
    end_index: int | None = None
    first_shift_s: float | None = None
    first_shift_index: int | None = None
    swap: Answer | None = None
    answers: list[Answer] = field(default_factory=list)
    failed_feedback: int = 0


class Traffic:
    """Sends the schedule's requests to ``url`` from ``clients`` threads.

    ``first_version`` is the version expected to answer first; the first answer from any
    other version is the swap. ``request_prefix`` makes the request ids of this run unique.
    """

    def __init__(
        self,
        url: str,
        scenario: Scenario,
        *,
        first_version: str,
        request_prefix: str,
        schedule: Schedule | None = None,
        clients: int = 3,
    ) -> None:
        import numpy as np

        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise InvalidArgument(f"invalid server URL {url!r}: expected http://host:port")
        if clients < 1:
            raise InvalidArgument(f"invalid clients {clients!r}: must be >= 1")
        self.host, self.port = parts.hostname, parts.port
        self.schedule = schedule or Schedule()
        self.first_version = first_version
        self.request_prefix = request_prefix
        self.columns = scenario.features
        self._small = scenario.small[self.columns].to_numpy(dtype=np.float64)
        self._small_labels = scenario.small[TARGET].to_numpy()
        self._stream = scenario.stream[self.columns].to_numpy(dtype=np.float64)
        self._stream_labels = scenario.stream[TARGET].to_numpy()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state = _State()
        self._threads = [
            threading.Thread(target=self._client, name=f"quickstart-traffic-{n}", daemon=True)
            for n in range(clients)
        ]
        self._started_s = 0.0

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        self._started_s = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Send nothing more (requests in flight finish)."""
        self._stop.set()

    def finish(self, *, after: int) -> None:
        """End the traffic ``after`` more requests (unless it is to end sooner already)."""
        with self._lock:
            end = self._state.next_index + after
            if self._state.end_index is None or end < self._state.end_index:
                self._state.end_index = end

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the clients to finish; True when they all did."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        return not any(t.is_alive() for t in self._threads)

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    @property
    def answers(self) -> list[Answer]:
        """Every request so far, in the order the answers came back."""
        with self._lock:
            return list(self._state.answers)

    def stats(self) -> TrafficStats:
        with self._lock:
            state = self._state
            answers = state.answers
            return TrafficStats(
                sent=state.next_index,
                answered=len(answers),
                failed=sum(1 for a in answers if not a.ok),
                failed_feedback=state.failed_feedback,
                share=state.last_share,
                versions=dict(Counter(a.version for a in answers if a.ok)),
                first_shift_s=state.first_shift_s,
                first_shift_index=state.first_shift_index,
                swap=state.swap,
                done=self.done,
                planned=state.end_index,
            )

    # -- the clients ---------------------------------------------------------------------------
    def _take(self) -> int | None:
        """The next request index, or None when the traffic is over."""
        with self._lock:
            index = self._state.next_index
            end = self._state.end_index
            if self._stop.is_set() or (end is not None and index >= end):
                return None
            if time.monotonic() - self._started_s > self.schedule.max_s:
                return None
            self._state.next_index = index + 1
            self._state.last_share = self.schedule.shifted_share(index)
            return index

    def _client(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            while (index := self._take()) is not None:
                due = self._started_s + index / self.schedule.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                connection = self._send(connection, index)
        finally:
            connection.close()

    def _rows(self, index: int) -> tuple[list[list[float]], list[int], list[bool]]:
        """Request ``index``'s rows, their labels, and which rows are shifted (seeded by the
        index, so a request's rows do not depend on which client sends it)."""
        import numpy as np

        rng = np.random.default_rng((self.schedule.seed, index))
        shifted = [
            bool(s) for s in rng.random(self.schedule.rows) < self.schedule.shifted_share(index)
        ]
        rows: list[list[float]] = []
        labels: list[int] = []
        for from_stream in shifted:
            table, truth = (
                (self._stream, self._stream_labels)
                if from_stream
                else (self._small, self._small_labels)
            )
            pick = int(rng.integers(len(table)))
            rows.append(table[pick].tolist())
            labels.append(int(truth[pick]))
        return rows, labels, shifted

    def _send(
        self, connection: http.client.HTTPConnection, index: int
    ) -> http.client.HTTPConnection:
        rows, labels, shifted = self._rows(index)
        request_id = f"{self.request_prefix}-{index}"
        body = {"dataframe_split": {"columns": self.columns, "data": rows}}
        sent = time.monotonic()
        if any(shifted):
            with self._lock:
                first = self._state.first_shift_index
                if first is None or index < first:
                    self._state.first_shift_index = index
                    self._state.first_shift_s = sent
        status, version, predictions = 0, "", None
        try:
            status, headers, data = _post(connection, "/invocations", body, request_id)
            if status == 200:
                version = headers.get("x-model-version", "")
                predictions = json.loads(data)["predictions"]
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            connection.close()  # reconnect for the next request
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            status = 0
        feedback_ok = status == 200 and self._feedback(connection, request_id, labels)
        answer = Answer(
            index=index,
            sent_s=sent,
            answered_s=time.monotonic(),
            status=status,
            version=version,
            rows=len(rows),
            shifted=sum(shifted),
            correct=_correct(predictions, labels, [True] * len(labels)),
            shifted_correct=_correct(predictions, labels, shifted),
            feedback_ok=feedback_ok,
        )
        self._record(answer)
        return connection

    def _feedback(
        self, connection: http.client.HTTPConnection, request_id: str, labels: list[int]
    ) -> bool:
        try:
            status, _, _ = _post(
                connection, "/feedback", {"request_id": request_id, "ground_truth": labels}, None
            )
        except (OSError, http.client.HTTPException):
            connection.close()
            return False
        return status == 202

    def _record(self, answer: Answer) -> None:
        with self._lock:
            state = self._state
            state.answers.append(answer)
            if answer.ok and not answer.feedback_ok:
                state.failed_feedback += 1
            if (
                state.swap is None
                and answer.ok
                and answer.version != self.first_version
                and answer.version
            ):
                state.swap = answer
                end = state.next_index + self.schedule.after_swap
                if state.end_index is None or end < state.end_index:
                    state.end_index = end


def _post(
    connection: http.client.HTTPConnection, path: str, body: Any, request_id: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    connection.request("POST", path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def _correct(predictions: Sequence[Any] | None, labels: Sequence[int], keep: Sequence[bool]) -> int:
    """How many of the kept rows were predicted right (none when there was no answer)."""
    if predictions is None or len(predictions) != len(labels):
        return 0
    return sum(1 for p, y, k in zip(predictions, labels, keep, strict=True) if k and int(p) == y)
