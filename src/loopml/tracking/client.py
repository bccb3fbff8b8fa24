"""``Client``: the explicit tracking API, for programs that manage run ids themselves.

The fluent API (``loopml.start_run`` ...) is a thin layer over one Client per process.
Metrics logged one at a time are buffered and written in batches by a background thread;
``log_batch`` writes synchronously. Nothing is opened until first used.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core import validation as v
from loopml.core.datasets import DatasetVersion, dataset_input
from loopml.core.entities import (
    ArtifactKind,
    ArtifactRef,
    DatasetInput,
    Environment,
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Run,
    RunStatus,
    now_ms,
)
from loopml.errors import InvalidArgument, NotFound
from loopml.settings import Settings
from loopml.store import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    MetadataStore,
    StoreOptions,
    open_store,
)
from loopml.tracking.buffer import MetricBuffer
from loopml.tracking.environment import capture_environment as _capture_environment
from loopml.tracking.environment import current_user

if TYPE_CHECKING:
    from loopml.artifacts import ArtifactStore
    from loopml.core.compare import RunComparison


class Client:
    """Tracking client over a metadata store and an artifact store.

    ``Client()`` uses the settings from ``LOOPML_*`` variables (by default the embedded
    workspace ``./.loopml``); ``Client("postgresql+psycopg://...", artifact_uri="s3://...")``
    names them explicitly.
    """

    def __init__(
        self,
        store_uri: str | None = None,
        *,
        artifact_uri: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        base = settings or Settings.from_env()
        self.settings = dataclasses.replace(
            base,
            store_uri=store_uri if store_uri is not None else base.store_uri,
            artifact_uri=artifact_uri if artifact_uri is not None else base.artifact_uri,
        )
        self._lock = threading.Lock()
        self._store: MetadataStore | None = None
        self._buffer: MetricBuffer | None = None
        self._artifact_stores: dict[str, ArtifactStore] = {}
        self._run_roots: dict[str, str] = {}  # run id -> artifact root (fixed at creation)

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def store(self) -> MetadataStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    s = self.settings
                    self._store = open_store(
                        s.resolved_store_uri,
                        StoreOptions(s.busy_timeout_s, s.sqlite_synchronous),
                    )
        return self._store

    @property
    def _metrics(self) -> MetricBuffer:
        if self._buffer is None:
            with self._lock:
                if self._buffer is None:
                    s = self.settings
                    self._buffer = MetricBuffer(
                        self._write_metrics,
                        self._heartbeat,
                        interval_s=s.flush_interval_s,
                        max_points=s.flush_max_points,
                        heartbeat_interval_s=s.heartbeat_interval_s,
                    )
        return self._buffer

    def _write_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        self.store.log_batch(run_id, metrics=metrics)

    def _heartbeat(self, run_ids: Sequence[str], time_ms: int) -> None:
        self.store.heartbeat(run_ids, time_ms)

    def artifact_store(self, root_uri: str | None = None) -> ArtifactStore:
        """The artifact store at ``root_uri`` (default: the configured artifact root)."""
        from loopml.core.imports import first_import

        with first_import("loopml.artifacts"):
            from loopml.artifacts import ArtifactStore

        uri = root_uri or self.settings.resolved_artifact_uri
        if uri not in self._artifact_stores:
            self._artifact_stores[uri] = ArtifactStore(uri)
        return self._artifact_stores[uri]

    def flush(self) -> None:
        """Write every buffered metric point now."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Flush and release connections."""
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(self, name: str, *, tags: Mapping[str, str] | None = None) -> Experiment:
        return self.store.create_experiment(name, tags=tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def set_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if it does not exist yet."""
        found = self.store.get_experiment_by_name(name)
        if found is not None:
            return found
        if name == DEFAULT_EXPERIMENT_NAME:
            return self.store.get_experiment(DEFAULT_EXPERIMENT_ID)
        from loopml.errors import AlreadyExists

        try:
            return self.store.create_experiment(name)
        except AlreadyExists:  # another process created it meanwhile
            found = self.store.get_experiment_by_name(name)
            assert found is not None
            return found

    def list_experiments(
        self, *, include_deleted: bool = False, max_results: int = 1000
    ) -> list[Experiment]:
        stage = None if include_deleted else LifecycleStage.ACTIVE
        items: list[Experiment] = []
        token: str | None = None
        while True:
            page = self.store.list_experiments(
                lifecycle_stage=stage, max_results=max_results, page_token=token
            )
            items.extend(page.items)
            token = page.next_page_token
            if token is None:
                return items

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        return self.store.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.set_experiment_lifecycle(experiment_id, LifecycleStage.ACTIVE)

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str = DEFAULT_EXPERIMENT_ID,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        capture_environment: bool | None = None,
    ) -> Run:
        """Start a RUNNING run, with its environment recorded (unless turned off)."""
        run = self.store.create_run(
            experiment_id,
            name=name,
            tags=tags,
            parent_run_id=parent_run_id,
            user=self.settings.user or current_user(),
            artifact_uri=self.settings.resolved_artifact_uri,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        capture = self.settings.capture_environment
        if capture_environment is not None:
            capture = capture_environment
        if capture:
            self.store.set_environment(run.run_id, _capture_environment())
        self._metrics.track(run.run_id)
        return run

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        *,
        end_time: int | None = None,
    ) -> Run:
        """Flush the run's metrics and end it with ``status``."""
        try:
            status = RunStatus(str(status).upper())
        except ValueError:
            valid = ", ".join(s.value for s in RunStatus if s.is_terminal)
            raise InvalidArgument(
                f"invalid end status {status!r}: must be one of {valid}"
            ) from None
        if self._buffer is not None:
            self._buffer.flush(run_id)
            self._buffer.untrack(run_id)
        return self.store.update_run(run_id, status=status, end_time=end_time or now_ms())

    def set_notes(self, run_id: str, notes: str) -> Run:
        return self.store.update_run(run_id, notes=notes)

    def rename_run(self, run_id: str, name: str) -> Run:
        return self.store.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self.store.set_run_lifecycle(run_id, LifecycleStage.ACTIVE)

    # -- logging -----------------------------------------------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        """Buffer one metric point; it is written within ``flush_interval_s``."""
        key = v.check_key(key, "metric key")
        if type(value) is not float:  # the checks' own fast paths, inlined: this is hot
            value = v.check_metric_value(key, value)
        if type(step) is not int:
            step = v.check_step(key, step)
        ts = time.time_ns() // 1_000_000 if timestamp is None else v.check_timestamp(timestamp)
        (self._buffer or self._metrics).add(run_id, Metric(key, value, step, ts))

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> None:
        ts = time.time_ns() // 1_000_000 if timestamp is None else v.check_timestamp(timestamp)
        points = []
        for key, value in metrics.items():
            key = v.check_key(key, "metric key")
            points.append(
                Metric(key, v.check_metric_value(key, value), v.check_step(key, step), ts)
            )
        self._metrics.add_many(run_id, points)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metric points, params and tags now, in one transaction."""
        self.store.log_batch(
            run_id,
            metrics=metrics,
            params={k: v.param_value(k, val) for k, val in (params or {}).items()},
            tags={k: v.tag_value(k, val) for k, val in (tags or {}).items()},
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        self.store.log_inputs(run_id, datasets)

    # -- artifacts ---------------------------------------------------------------------------

    def log_dataset_version(
        self, run_id: str, version: DatasetVersion, *, context: str = "input"
    ) -> None:
        """Record that the run read (``context="input"``) or wrote (``"output"``) a dataset
        version; lineage walks from the run's models back to it."""
        if context not in ("input", "output"):
            raise InvalidArgument(
                f"invalid context {context!r} for dataset {version.name!r}: must be 'input' "
                "or 'output'"
            )
        self.log_inputs(run_id, [dataset_input(version, context)])

    def _artifacts_of(self, run_id: str) -> ArtifactStore:
        root = self._run_roots.get(run_id)
        if root is None:
            root = self._run_roots[run_id] = self.store.get_run(run_id).artifact_uri
        return self.artifact_store(root or None)

    def _record(self, run_id: str, ref: ArtifactRef, name: str | None) -> ArtifactRef:
        ref = dataclasses.replace(ref, path=name or ref.path, created_at=now_ms())
        self.store.record_artifact(run_id, ref)
        return ref

    def log_artifact(
        self, run_id: str, path: str | os.PathLike[str], *, name: str | None = None
    ) -> ArtifactRef:
        """Store a file (or, given a folder, the whole folder) as an artifact of the run."""
        source = Path(path)
        if source.is_dir():
            return self.log_artifacts(run_id, source, name=name)
        if not source.is_file():
            raise NotFound(f"cannot log artifact {str(path)!r}: no such file or folder")
        return self._record(run_id, self._artifacts_of(run_id).put_file(source), name)

    def log_artifacts(
        self, run_id: str, directory: str | os.PathLike[str], *, name: str | None = None
    ) -> ArtifactRef:
        """Store a folder (as a manifest of its files) as one artifact of the run."""
        source = Path(directory)
        if not source.is_dir():
            raise NotFound(f"cannot log artifacts from {str(directory)!r}: not a folder")
        ref = self._artifacts_of(run_id).put_directory(source)
        return self._record(run_id, ref, name or source.name)

    def log_bytes(self, run_id: str, data: bytes, name: str) -> ArtifactRef:
        v.check_key(name, "artifact name")
        ref = self._artifacts_of(run_id).put_bytes(data, name=name)
        return self._record(run_id, ref, name)

    def log_text(self, run_id: str, text: str, name: str) -> ArtifactRef:
        return self.log_bytes(run_id, text.encode(), name)

    def log_dict(self, run_id: str, data: Mapping[str, Any], name: str) -> ArtifactRef:
        """Store a dict as JSON (or YAML when ``name`` ends in .yaml/.yml)."""
        if name.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise InvalidArgument(
                    f"cannot write {name!r} as YAML: PyYAML is not installed; use a .json name"
                ) from None
            text = yaml.safe_dump(dict(data), sort_keys=False)
        else:
            text = json.dumps(data, indent=2, default=str)
        return self.log_text(run_id, text, name)

    def log_figure(self, run_id: str, figure: Any, name: str) -> ArtifactRef:
        """Store a matplotlib figure; the format follows the name (``.png``, ``.svg``, ``.pdf``)."""
        if not hasattr(figure, "savefig"):
            raise InvalidArgument(
                f"cannot log {type(figure).__name__} as a figure: expected a matplotlib Figure"
            )
        suffix = Path(name).suffix.lstrip(".").lower() or "png"
        buf = io.BytesIO()
        figure.savefig(buf, format=suffix, bbox_inches="tight")
        return self.log_bytes(run_id, buf.getvalue(), name)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRef]:
        return self.store.list_artifacts(run_id, prefix)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """The bytes of a file artifact, verified against its digest."""
        ref = self.store.get_artifact(run_id, path)
        if ref.kind is ArtifactKind.DIRECTORY:
            raise InvalidArgument(
                f"artifact {path!r} of run {run_id!r} is a folder: use download_artifact"
            )
        return self._artifacts_of(run_id).read_bytes(ref.digest)

    def load_dict(self, run_id: str, path: str) -> Any:
        return json.loads(self.read_artifact(run_id, path))

    def download_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Download a file or folder artifact into ``dest`` (a folder); returns its local path."""
        ref = self.store.get_artifact(run_id, path)
        store = self._artifacts_of(run_id)
        target = Path(dest) / Path(ref.path).name
        if ref.kind is ArtifactKind.DIRECTORY:
            return store.download_directory(ref.digest, target)
        return store.download_file(ref.digest, target)

    # -- querying ----------------------------------------------------------------------------
    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """One page of runs; see docs/tracking.md for the filter language."""
        return self.store.search_runs(
            experiment_ids,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            lifecycle_stage=None if include_deleted else LifecycleStage.ACTIVE,
        )

    def iter_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        page_size: int = 1000,
    ) -> Iterator[Run]:
        """Every matching run, fetched page by page."""
        token: str | None = None
        while True:
            page = self.search_runs(
                experiment_ids,
                filter=filter,
                order_by=order_by,
                max_results=page_size,
                page_token=token,
            )
            yield from page.items
            token = page.next_page_token
            if token is None:
                return

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        if self._buffer is not None:
            self._buffer.flush(run_id)
        return self.store.get_metric_history(run_id, key)

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        return self.store.get_inputs(run_id)

    def get_environment(self, run_id: str) -> Environment | None:
        return self.store.get_environment(run_id)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Params and latest metrics of several runs side by side, with differences marked."""
        if len(run_ids) < 2:
            raise InvalidArgument(f"compare needs at least two run ids, got {len(run_ids)}")
        from loopml.core.compare import compare

        return compare([self.store.get_run(r) for r in run_ids])

    # -- orphans -----------------------------------------------------------------------------
    def find_orphaned_runs(self, *, stale_after_s: float | None = None) -> list[Run]:
        """RUNNING runs whose process is gone: no heartbeat for ``stale_after_s`` seconds,
        or, on this host, a process id that no longer exists."""
        stale = self.settings.stale_after_s if stale_after_s is None else stale_after_s
        cutoff = now_ms() - int(stale * 1000)
        host = socket.gethostname()
        orphans = []
        for run in self.iter_runs(filter="attributes.status = 'RUNNING'"):
            silent = run.heartbeat_time is not None and run.heartbeat_time < cutoff
            gone = run.host == host and run.pid is not None and not _pid_alive(run.pid)
            if silent or gone:
                orphans.append(run)
        return orphans

    def mark_orphaned_runs(self, *, stale_after_s: float | None = None) -> list[Run]:
        """End every orphaned run as KILLED, at its last heartbeat; returns them."""
        ended = []
        for run in self.find_orphaned_runs(stale_after_s=stale_after_s):
            ended.append(
                self.store.update_run(
                    run.run_id,
                    status=RunStatus.KILLED,
                    end_time=run.heartbeat_time or run.start_time,
                )
            )
        return ended


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): look closer.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
