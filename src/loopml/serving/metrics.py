"""Prometheus metrics of the model server, per model and version.

With several worker processes the parent sets ``PROMETHEUS_MULTIPROC_DIR`` and ``GET /metrics``
aggregates every worker's samples (prometheus-client's multiprocess mode); with one process the
server's own registry is exposed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["ServerMetrics", "VersionMetrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class VersionMetrics:
    """The labelled children of one model version, looked up once (labels() costs a dict
    lookup and a lock per call; the request path uses these directly)."""

    def __init__(self, metrics: ServerMetrics, model: str, version: str) -> None:
        self._metrics = metrics
        self.model = model
        self.version = version
        self._requests: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}
        self.batch_size = metrics.batch_size.labels(model, version)
        self.batch_seconds = metrics.batch_seconds.labels(model, version)
        self.queue_depth = metrics.queue_depth.labels(model, version)
        self.shadow = metrics.shadow_requests.labels(model, version)

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self._metrics.requests.labels(
                self.model, self.version, route, str(status)
            )
        counter.inc()
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = self._metrics.latency.labels(
                self.model, self.version, route
            )
        histogram.observe(seconds)

    def on_batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.batch_seconds.observe(seconds)


class ServerMetrics:
    """Every metric the server exports, in its own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        labels = ("model", "version")
        reg = self.registry
        self.requests = Counter(
            "loopml_requests",
            "Requests answered, by model, version, route and HTTP status.",
            (*labels, "route", "status"),
            registry=reg,
        )
        self.latency = Histogram(
            "loopml_request_latency_seconds",
            "Time from request received to response ready.",
            (*labels, "route"),
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "loopml_request_errors",
            "Requests answered with an error, by route and error code.",
            ("model", "route", "code"),
            registry=reg,
        )
        self.batch_size = Histogram(
            "loopml_batch_size_rows",
            "Rows per model call (1 when the batcher was bypassed).",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=reg,
        )
        self.batch_seconds = Histogram(
            "loopml_batch_duration_seconds",
            "Time of one model call on a batch.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.queue_depth = Gauge(
            "loopml_queue_depth",
            "Requests waiting for the model.",
            labels,
            registry=reg,
            **gauge_mode,
        )
        self.shadow_requests = Counter(
            "loopml_shadow_requests",
            "Copies of requests scored by a shadow version.",
            labels,
            registry=reg,
        )
        self.shadow_skipped = Counter(
            "loopml_shadow_skipped",
            "Shadow copies not scored because too many were pending.",
            ("model",),
            registry=reg,
        )
        self.log_dropped = Counter(
            "loopml_prediction_log_dropped",
            "Predictions the log could not take (queue full); serving went on.",
            ("model",),
            registry=reg,
        )
        self.log_disabled = Gauge(
            "loopml_prediction_log_disabled",
            "1 when the prediction log could not be opened and the server serves without it.",
            registry=reg,
            **gauge_mode,
        )
        self.swaps = Counter(
            "loopml_model_swaps",
            "Hot swaps to a new version after an alias moved.",
            ("model",),
            registry=reg,
        )
        self.loaded = Gauge(
            "loopml_model_loaded",
            "1 for each model version loaded, with its role and runtime.",
            (*labels, "role", "runtime"),
            registry=reg,
            **gauge_mode,
        )

    def for_version(self, model: str, version: str) -> VersionMetrics:
        return VersionMetrics(self, model, version)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry: CollectorRegistry = self.registry
        if self.multiprocess:
            from prometheus_client import CollectorRegistry as _Registry
            from prometheus_client import multiprocess

            registry = _Registry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
