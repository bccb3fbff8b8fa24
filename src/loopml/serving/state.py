"""The model server's state: endpoints, the prediction log, metrics and hot swaps.

:class:`ServerState` is built before the server binds its port (every model is loaded and
warmed up then, so a broken model fails the start, not the first request). Its
:meth:`~ServerState.startup` and :meth:`~ServerState.shutdown` run in the ASGI lifespan: start
the prediction log writer and the alias watcher; on shutdown, drain the batchers and flush the
log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import socket
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidState, LoopmlError, NotFound
from loopml.serving.config import ServeConfig
from loopml.serving.deployment import (
    LoadedVersion,
    ModelEndpoint,
    ResolvedModel,
    Slot,
    load_version,
    resolve,
)
from loopml.serving.metrics import ServerMetrics

if TYPE_CHECKING:
    from loopml.predictions import PredictionLogger
    from loopml.predictions.entries import Role
    from loopml.serving.hotswap import AliasWatcher
    from loopml.tracking.client import Client

__all__ = ["Scored", "ServerState"]

log = logging.getLogger("loopml.serving")

_MAX_PENDING_SHADOWS = 256
_SWITCH_INTERVAL_S = 0.0005
_REMEMBERED_REQUESTS = 100_000
_MAX_REQUEST_ID = 128


class Scored:
    """The answer to one request: which version answered, its outputs and the request id."""

    __slots__ = ("outputs", "request_id", "version")

    def __init__(self, version: LoadedVersion, outputs: dict[str, Any], request_id: str) -> None:
        self.version = version
        self.outputs = outputs
        self.request_id = request_id


class ServerState:
    """Everything the routes share."""

    def __init__(
        self,
        config: ServeConfig,
        endpoints: dict[str, ModelEndpoint],
        *,
        client: Client | None,
        metrics: ServerMetrics,
    ) -> None:
        self.config = config
        self.endpoints = endpoints
        self.default_name = next(iter(endpoints))
        self.client = client
        self.metrics = metrics
        self.logger: PredictionLogger | None = None
        self.watcher: AliasWatcher | None = None
        self.ready = False
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._shadow_tasks: set[asyncio.Task[None]] = set()

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def build(cls, config: ServeConfig, client: Client | None) -> ServerState:
        """Resolve and load every model of ``config`` (primaries, canaries, shadows)."""
        metrics = ServerMetrics()
        endpoints: dict[str, ModelEndpoint] = {}
        for index, uri in enumerate(config.models):
            resolved = resolve(uri, client, name=config.name_of(index))
            label = config.version_of(index)
            if label:
                resolved = dataclasses.replace(resolved, version=label)
            if resolved.name in endpoints:
                raise InvalidArgument(
                    f"two models are served under the name {resolved.name!r} ({uri!r} and "
                    f"{endpoints[resolved.name].primary.uri!r}); use --canary to split traffic "
                    "between versions of one model, or give each a distinct name"
                )
            primary = _load(config, resolved, "primary", metrics)
            endpoints[resolved.name] = ModelEndpoint(
                resolved.name, Slot(uri, "primary", primary, alias=resolved.alias)
            )
        extra = [("canary", c.name, c.uri, c.weight) for c in config.canaries]
        extra += [("shadow", s.name, s.uri, 0.0) for s in config.shadows]
        for role, name, uri, weight in extra:
            endpoint = _endpoint_for(endpoints, name, role)
            resolved = resolve(uri, client, name=endpoint.name)
            loaded = _load(config, resolved, role, metrics)
            slots = endpoint.canaries if role == "canary" else endpoint.shadows
            slots.append(Slot(uri, role, loaded, weight=weight, alias=resolved.alias))
        return cls(config, endpoints, client=client, metrics=metrics)

    def load(self, resolved: ResolvedModel, role: str) -> LoadedVersion:
        return _load(self.config, resolved, role, self.metrics)

    # -- lifespan --------------------------------------------------------------------------------
    async def startup(self) -> None:
        # The prediction log's writer and the alias watcher are background threads: hand the
        # GIL back to the event loop within 0.5 ms instead of 5, so they cannot stall requests.
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
        # Everything loaded so far (models, libraries) lives as long as the server: move it out
        # of the cyclic collector's sight, so a full collection scans only what requests made
        # instead of pausing every request for the whole heap.
        gc.collect()
        gc.freeze()
        if self.config.log_predictions and self.client is not None:
            from loopml.predictions import PredictionLogger

            try:
                logger = PredictionLogger.from_client(
                    self.client, writer_id=f"{socket.gethostname()}:{os.getpid()}"
                )
                logger.start()
            except (LoopmlError, OSError) as exc:  # serve anyway; say so loudly
                log.error(
                    "the prediction log cannot be written (%s); serving WITHOUT it: set "
                    "LOOPML_WORKSPACE or LOOPML_STORE_URI to a writable store, or pass "
                    "--no-log-predictions to silence this",
                    exc,
                )
                self.metrics.log_disabled.set(1)
            else:
                self.logger = logger
        if self.config.poll_interval_s > 0 and self.client is not None and self.alias_slots():
            from loopml.serving.hotswap import AliasWatcher

            self.watcher = AliasWatcher(
                self, asyncio.get_running_loop(), interval_s=self.config.poll_interval_s
            )
            self.watcher.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        if self._shadow_tasks:
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        for endpoint in self.endpoints.values():
            for slot in endpoint.slots():
                await slot.current.batcher.aclose()
        if self.logger is not None:
            await asyncio.to_thread(self.logger.close)

    # -- lookups ---------------------------------------------------------------------------------
    def endpoint(self, name: str | None) -> ModelEndpoint:
        if name is None:
            return self.endpoints[self.default_name]
        found = self.endpoints.get(name)
        if found is None:
            raise NotFound(
                f"model {name!r} is not served here; served models: {', '.join(self.endpoints)}",
                model=name,
                served=list(self.endpoints),
            )
        return found

    def alias_slots(self) -> list[tuple[ModelEndpoint, Slot]]:
        return [
            (endpoint, slot)
            for endpoint in self.endpoints.values()
            for slot in endpoint.slots()
            if slot.alias is not None
        ]

    def all_versions(self) -> Iterator[LoadedVersion]:
        for endpoint in self.endpoints.values():
            for slot in endpoint.slots():
                yield slot.current

    # -- hot swap --------------------------------------------------------------------------------
    async def install(self, slot: Slot, new: LoadedVersion) -> None:
        """Put ``new`` in ``slot`` in one assignment, then let the old version finish what it
        had queued. Requests that already picked the old version complete on it."""
        old = slot.current
        slot.current = new
        self.metrics.swaps.labels(new.name).inc()
        self.metrics.loaded.labels(new.name, new.version, slot.role, new.runtime).set(1)
        log.info("model %s: %s %s -> version %s", new.name, slot.role, old.version, new.version)
        await old.batcher.aclose()
        if old.version != new.version:
            self.metrics.loaded.labels(old.name, old.version, slot.role, old.runtime).set(0)

    # -- scoring ---------------------------------------------------------------------------------
    def choose(
        self, endpoint: ModelEndpoint, version: str | None, route_key: str | None
    ) -> LoadedVersion:
        """The version that answers: the pinned one, else a canary by weight or the primary."""
        return endpoint.version(version) if version else endpoint.pick(route_key)

    def request_id(self, given: str | None) -> str:
        if given:
            if len(given) > _MAX_REQUEST_ID or not given.isprintable():
                raise InvalidArgument(
                    f"request id {given[:40]!r}... must be at most {_MAX_REQUEST_ID} printable "
                    "characters"
                )
            return given
        return uuid.uuid4().hex

    async def score(
        self,
        *,
        model: str | None,
        version: str | None,
        methods: tuple[str, ...],
        data: Any,
        request_id: str,
        route: str,
        route_key: str | None = None,
        deadline_ms: float | None = None,
        chosen: LoadedVersion | None = None,
    ) -> Scored:
        """Score ``data`` on the version that should answer (``chosen``, when the route had to
        pick it first to shape the input; else picked here), log it, feed the shadows."""
        started = time.perf_counter()
        endpoint = self.endpoint(model)
        if chosen is None:
            chosen = self.choose(endpoint, version, route_key)
        prepared, outputs = await chosen.score(methods, data, deadline_ms=deadline_ms)
        seconds = time.perf_counter() - started
        chosen.metrics.observe(route, 200, seconds)
        if self.logger is not None:
            self._remember(request_id, chosen)  # only /feedback reads it, and it needs the log
            self._log(chosen, request_id, route, prepared, outputs, seconds, role="primary")
        if endpoint.shadows and not version:
            self._shadow(endpoint, methods, data, request_id, route)
        return Scored(chosen, outputs, request_id)

    def _log(
        self,
        version: LoadedVersion,
        request_id: str,
        route: str,
        prepared: Any,
        outputs: dict[str, Any],
        seconds: float,
        *,
        role: Role,
    ) -> None:
        from loopml.predictions import PredictionEntry

        assert self.logger is not None
        entry = PredictionEntry(
            request_id=request_id,
            model_name=version.name,
            model_version=version.version,
            role=role,
            timestamp_ms=int(time.time() * 1000),
            latency_ms=seconds * 1000.0,
            inputs=prepared,
            outputs=outputs,
            protocol=route,
            input_names=version.input_names,
        )
        if not self.logger.log(entry):
            self.metrics.log_dropped.labels(version.name).inc()

    def _shadow(
        self,
        endpoint: ModelEndpoint,
        methods: tuple[str, ...],
        data: Any,
        request_id: str,
        route: str,
    ) -> None:
        if len(self._shadow_tasks) >= _MAX_PENDING_SHADOWS:
            self.metrics.shadow_skipped.labels(endpoint.name).inc()
            return
        task = asyncio.get_running_loop().create_task(
            self._run_shadows(endpoint, methods, data, request_id, route)
        )
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _run_shadows(
        self,
        endpoint: ModelEndpoint,
        methods: tuple[str, ...],
        data: Any,
        request_id: str,
        route: str,
    ) -> None:
        for slot in endpoint.shadows:
            shadow = slot.current
            started = time.perf_counter()
            try:
                wanted = tuple(m for m in methods if m in shadow.methods) or shadow.methods[:1]
                prepared, outputs = await shadow.score(wanted, data)
            except Exception as exc:  # a shadow's failure is logged, never answered
                log.warning("shadow %s/%s failed: %s", shadow.name, shadow.version, exc)
                shadow.metrics.observe(route + ":shadow", 500, time.perf_counter() - started)
                continue
            seconds = time.perf_counter() - started
            shadow.metrics.shadow.inc()
            shadow.metrics.observe(route + ":shadow", 200, seconds)
            if self.logger is not None:
                self._log(shadow, request_id, route, prepared, outputs, seconds, role="shadow")

    # -- feedback --------------------------------------------------------------------------------
    def _remember(self, request_id: str, version: LoadedVersion) -> None:
        recent = self._recent
        recent[request_id] = (version.name, version.version)
        if len(recent) > _REMEMBERED_REQUESTS:
            recent.popitem(last=False)

    def feedback(self, request_id: str, ground_truth: Any, model: str | None) -> bool:
        """Log ground truth for an earlier request; ``False`` if the log's queue was full."""
        from loopml.predictions import FeedbackEntry

        if self.logger is None:
            raise InvalidState(
                "this server does not log predictions (started with --no-log-predictions, or its "
                "store could not be opened: see /metrics loopml_prediction_log_disabled), "
                "so it cannot record feedback"
            )
        known = self._recent.get(request_id)
        if model is not None:
            self.endpoint(model)  # NotFound for a model not served here
            name, version = model, known[1] if known and known[0] == model else ""
        elif known is not None:
            name, version = known
        else:
            name, version = self.default_name, ""
        accepted = self.logger.log_feedback(
            FeedbackEntry(
                request_id=request_id,
                model_name=name,
                model_version=version,
                timestamp_ms=int(time.time() * 1000),
                ground_truth=ground_truth,
            )
        )
        if not accepted:
            self.metrics.log_dropped.labels(name).inc()
        return accepted


def _load(
    config: ServeConfig, resolved: ResolvedModel, role: str, metrics: ServerMetrics
) -> LoadedVersion:
    loaded = load_version(
        resolved,
        role=role,
        metrics=metrics.for_version(resolved.name, resolved.version),
        onnx_fast_path=config.onnx_fast_path,
        max_batch_size=config.max_batch_size,
        max_wait_ms=config.max_wait_ms,
        deadline_ms=config.deadline_ms,
    )
    metrics.loaded.labels(resolved.name, resolved.version, role, loaded.runtime).set(1)
    return loaded


def _endpoint_for(endpoints: dict[str, ModelEndpoint], name: str, what: str) -> ModelEndpoint:
    found = endpoints.get(name)
    if found is None:
        raise InvalidArgument(
            f"{what} {name!r} names no served model; served models: {', '.join(endpoints)} "
            f"(a {what} is a version of a model given as a URI)"
        )
    return found
