"""Loaded model versions and the endpoints that route requests between them.

A :class:`LoadedVersion` is one model version in memory with its own batcher: a request is
checked against the signature on its own (bad input fails alone), then scored together with
whatever else is waiting for the model. A :class:`ModelEndpoint` is one served model name: a
primary version, optional canaries (a share of the traffic each, sticky by a key when asked) and
shadows (a copy of the traffic, never answered). Each role sits in a :class:`Slot` whose version
is replaced atomically when a hot swap installs a new one.
"""

from __future__ import annotations

import contextlib
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, LoopmlError, NotFound
from loopml.serving.batching import AdaptiveBatcher

if TYPE_CHECKING:
    from loopml.models.predictor import Predictor
    from loopml.serving.metrics import VersionMetrics
    from loopml.tracking.client import Client

__all__ = ["LoadedVersion", "ModelEndpoint", "ResolvedModel", "Slot", "load_version", "resolve"]

_MODEL_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError)


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved to a local folder and the name and version it is served under.

    ``alias`` is set when the URI follows an alias (``models:/fraud@champion``): the server
    watches it and hot-swaps when it moves.
    """

    uri: str
    path: Path
    name: str
    version: str
    alias: str | None = None
    registered: str | None = None  # the registered model's name, for models:/ URIs


def resolve(uri: str, client: Client | None, *, name: str | None = None) -> ResolvedModel:
    """Resolve ``uri`` (folder, ``runs:/``, ``models:/n/3``, ``models:/n@alias``,
    ``models:/n/latest``) to the exact version it names now."""
    from loopml.models.uri import model_version, parse_model_uri, resolve_model_uri

    parsed = parse_model_uri(uri)
    if parsed.scheme == "models":
        assert parsed.name is not None
        if client is None:
            from loopml.tracking.fluent import get_client

            client = get_client()
        found = model_version(parsed, client)
        exact = f"models:/{found.name}/{found.version}"
        return ResolvedModel(
            uri=uri,
            path=resolve_model_uri(exact, client),
            name=name or found.name,
            version=str(found.version),
            alias=parsed.alias,
            registered=found.name,
        )
    path = resolve_model_uri(uri, client)
    if parsed.scheme == "runs":
        guessed = (parsed.artifact_path or "model").rstrip("/").rsplit("/", 1)[-1]
        return ResolvedModel(uri=uri, path=path, name=name or guessed, version=parsed.run_id or "")
    return ResolvedModel(uri=uri, path=path, name=name or path.name, version="")


@dataclass(frozen=True)
class _Job:
    methods: tuple[str, ...]
    prepared: Any
    rows: int


class LoadedVersion:
    """One model version in memory, scored through its own adaptive batcher."""

    def __init__(
        self,
        resolved: ResolvedModel,
        predictor: Predictor,
        *,
        role: str,
        metrics: VersionMetrics,
        max_batch_size: int,
        max_wait_ms: float,
        deadline_ms: float | None,
    ) -> None:
        self.resolved = resolved
        self.predictor = predictor
        self.name = resolved.name
        self.version = resolved.version
        self.role = role
        self.metrics = metrics
        self.runtime = predictor.runtime
        self.methods = tuple(predictor.methods)
        signature = predictor.signature
        columns = signature.inputs.columns if signature is not None else ()
        # what the prediction log calls the columns of a prepared 2-D array
        self.input_names = tuple(spec.name for spec in columns) or None
        self.loaded_ms = int(time.time() * 1000)
        self.output_examples: dict[str, Any] = {}  # outputs on the input example, if any
        self.batcher: AdaptiveBatcher[_Job, dict[str, Any]] = AdaptiveBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            deadline_ms=deadline_ms,
            rows_of=_rows_of_job,
            on_batch=metrics.on_batch,
            name=f"{resolved.name}/{resolved.version}",
        )

    async def score(
        self, methods: tuple[str, ...], data: Any, *, deadline_ms: float | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """``(prepared input, {method: output})`` for ``data``; bad input raises
        :class:`InvalidArgument` for this caller only."""
        self.predictor.check_methods(methods)
        try:
            prepared = self.predictor.prepare(data)
        except LoopmlError:
            raise
        except _MODEL_INPUT_ERRORS as exc:
            raise InvalidArgument(f"the input does not fit the model: {exc}") from None
        rows = _rows(prepared)
        if rows == 0:
            raise InvalidArgument("the request has no rows; send at least one")
        result = await self.batcher.submit(_Job(methods, prepared, rows), deadline_ms=deadline_ms)
        return prepared, result

    def _run_batch(self, jobs: list[_Job]) -> list[dict[str, Any]]:
        """Score ``jobs`` as one model call when their inputs stack, else one call each."""
        if len(jobs) == 1 or not _stackable(jobs):
            return [self._call(job.methods, job.prepared) for job in jobs]
        methods = tuple(dict.fromkeys(m for job in jobs for m in job.methods))
        stacked = _stack([job.prepared for job in jobs])
        outputs = self._call(methods, stacked)
        total = sum(job.rows for job in jobs)
        if any(_rows(out) != total for out in outputs.values()):  # not one output row per row
            return [self._call(job.methods, job.prepared) for job in jobs]
        results: list[dict[str, Any]] = []
        start = 0
        for job in jobs:
            stop = start + job.rows
            results.append({m: _slice(outputs[m], start, stop) for m in job.methods})
            start = stop
        return results

    def _call(self, methods: tuple[str, ...], prepared: Any) -> dict[str, Any]:
        try:
            return self.predictor.call_prepared(methods, prepared)
        except LoopmlError:
            raise
        except _MODEL_INPUT_ERRORS as exc:
            raise InvalidArgument(f"the model could not score the input: {exc}") from None

    def describe(self) -> dict[str, Any]:
        stats = self.batcher.stats()
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.resolved.uri,
            "alias": self.resolved.alias,
            "role": self.role,
            "flavor": self.predictor.flavor,
            "runtime": self.runtime,
            "methods": list(self.methods),
            "loaded_ms": self.loaded_ms,
            "batching": {
                "batches": stats.batches,
                "rows": stats.rows,
                "queue_depth": stats.queue_depth,
                "mean_batch_rows": stats.mean_batch_rows,
            },
        }


@dataclass
class Slot:
    """A role in an endpoint (primary, a canary or a shadow) and the version filling it now.

    ``uri`` is what the slot follows (``models:/fraud@challenger``); ``current`` is replaced in
    one assignment by a hot swap, so a request sees either the old or the new version whole.
    """

    uri: str
    role: str
    current: LoadedVersion
    weight: float = 0.0
    alias: str | None = None


@dataclass
class ModelEndpoint:
    """One served model name: its primary slot, canary slots and shadow slots."""

    name: str
    primary: Slot
    canaries: list[Slot] = field(default_factory=list)
    shadows: list[Slot] = field(default_factory=list)

    def slots(self) -> list[Slot]:
        return [self.primary, *self.canaries, *self.shadows]

    def pick(self, key: str | None = None) -> LoadedVersion:
        """The version that answers a request: a canary with its weight's probability (the same
        one every time for the same ``key`` when one is given), else the primary."""
        if not self.canaries:
            return self.primary.current
        point = (
            (zlib.crc32(key.encode()) % 10_000) / 100.0
            if key is not None
            else random.random() * 100.0
        )
        edge = 0.0
        for slot in self.canaries:
            edge += slot.weight
            if point < edge:
                return slot.current
        return self.primary.current

    def version(self, version: str) -> LoadedVersion:
        """The loaded version ``version`` (answering or shadow); :class:`NotFound` lists the
        loaded ones."""
        for slot in self.slots():
            if slot.current.version == version:
                return slot.current
        loaded = sorted({slot.current.version for slot in self.slots()})
        raise NotFound(
            f"model {self.name!r} has no loaded version {version!r}; loaded versions: "
            f"{', '.join(loaded) or 'none'}",
            model=self.name,
            version=version,
            loaded=loaded,
        )


def load_version(
    resolved: ResolvedModel,
    *,
    role: str,
    metrics: VersionMetrics,
    onnx_fast_path: bool,
    max_batch_size: int,
    max_wait_ms: float,
    deadline_ms: float | None,
) -> LoadedVersion:
    """Load ``resolved`` and warm it up on its input example (the first request then pays no
    lazy initialisation)."""
    from loopml.models.predictor import load_folder

    predictor = load_folder(resolved.path, uri=resolved.uri, onnx_fast_path=onnx_fast_path)
    example = predictor.input_example
    outputs: dict[str, Any] = {}
    if example is not None:
        # A bad example must not stop the server; real requests will tell.
        with contextlib.suppress(Exception):
            wanted = tuple(m for m in ("predict", "predict_proba") if m in predictor.methods)
            outputs = predictor.call_many(wanted, example)
    loaded = LoadedVersion(
        resolved,
        predictor,
        role=role,
        metrics=metrics,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        deadline_ms=deadline_ms,
    )
    loaded.output_examples = outputs
    return loaded


# -- stacking requests into one batch ----------------------------------------------------------
def _rows_of_job(job: _Job) -> int:
    return job.rows


def _rows(prepared: Any) -> int:
    if isinstance(prepared, dict):
        first = next(iter(prepared.values()), None)
        return 0 if first is None else len(first)
    shape = getattr(prepared, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(prepared)


def _kind(prepared: Any) -> tuple[Any, ...]:
    name = type(prepared).__name__
    if name == "ndarray":
        return (name, prepared.dtype.str, prepared.shape[1:])
    if name == "DataFrame":
        return (name, tuple(prepared.columns))
    if isinstance(prepared, dict):
        return ("dict", tuple(prepared))
    return (name, id(prepared))  # unknown: never stacked


def _stackable(jobs: Sequence[_Job]) -> bool:
    first = _kind(jobs[0].prepared)
    return first[0] in ("ndarray", "DataFrame", "dict") and all(
        _kind(job.prepared) == first for job in jobs[1:]
    )


def _stack(parts: list[Any]) -> Any:
    first = parts[0]
    if type(first).__name__ == "ndarray":
        import numpy as np

        return np.concatenate(parts, axis=0)
    if type(first).__name__ == "DataFrame":
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    import numpy as np

    return {key: np.concatenate([part[key] for part in parts]) for key in first}


def _slice(output: Any, start: int, stop: int) -> Any:
    if type(output).__name__ == "DataFrame":
        return output.iloc[start:stop].reset_index(drop=True)
    return output[start:stop]
