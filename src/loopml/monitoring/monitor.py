"""The monitor: tumbling windows over a served model's prediction log, scored and recorded.

``Monitor(client, "models:/fraud@champion").run_once()`` reads the prediction log written by
the model server since the last window it processed, cuts it into tumbling windows (a number
of rows, or a span of time aligned on the epoch), and for each complete window computes:

- data drift of every input column against the reference (the data the model was trained on,
  stored with the model version by :func:`set_reference`, or given), and prediction drift;
- data quality against the reference profile (missing rates, out-of-range values, new
  categories, schema changes);
- live performance on the rows whose ground truth arrived, and the label-free estimate
  (:class:`~loopml.monitoring.performance.ConfidenceEstimator`) for classifiers.

Every value is recorded as a metric of the tracking run ``monitor/<model>`` (experiment
``monitoring``; step = window number, timestamp = window end), exported as a Prometheus gauge,
and handed to the alert rules. The run's tag ``loopml.monitor.last_end_ms`` is the monitor's
state: a restarted monitor goes on from there, never scoring a window twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from loopml.core.entities import Run
    from loopml.monitoring.alerts import AlertManager
    from loopml.monitoring.drift import DriftDetector, DriftReport
    from loopml.monitoring.profile import DatasetProfile
    from loopml.monitoring.quality import QualityReport
    from loopml.tracking.client import Client

__all__ = ["Monitor", "WindowResult", "get_reference", "set_reference"]

log = logging.getLogger("loopml.monitoring")

EXPERIMENT = "monitoring"
LAST_END_TAG = "loopml.monitor.last_end_ms"
_WINDOWS_TAG = "loopml.monitor.windows"
REFERENCE_TAG = "loopml.monitoring.reference"
REFERENCE_FILE = "monitoring/reference.parquet"
PROFILE_FILE = "monitoring/profile.json"
_INPUT = "input."
_OUTPUT = "output."


@dataclass(frozen=True)
class WindowResult:
    """One scored window: its bounds, rows, and every value recorded for it."""

    model_name: str
    index: int
    start_ms: int
    end_ms: int
    rows: int
    labelled_rows: int
    values: dict[str, float]
    drift: DriftReport | None = None
    quality: QualityReport | None = None
    messages: tuple[str, ...] = ()
    alerts: list[Any] = field(default_factory=list)


# -- the reference stored with a model version ---------------------------------------------------
def set_reference(
    client: Client, model_uri: str, data: pd.DataFrame, *, sample_rows: int = 100_000
) -> str:
    """Store ``data`` (the training data, or a sample of it) as the monitoring reference of the
    model version ``model_uri`` names (``models:/name/3`` or ``models:/name@alias``): a Parquet
    artifact of the version's run (at most ``sample_rows`` rows) and its profile
    (``monitoring/profile.json``), recorded in the version's tag ``loopml.monitoring.reference``.
    Returns the sample's ``runs:/`` URI."""
    import io

    from loopml.models.uri import model_version, parse_model_uri

    parsed = parse_model_uri(model_uri)
    if parsed.scheme != "models":
        raise InvalidArgument(
            f"set_reference needs a registered model version (models:/name/3 or "
            f"models:/name@alias), got {model_uri!r}"
        )
    version = model_version(parsed, client)
    if version.run_id is None:
        raise InvalidArgument(f"model version {version.uri} has no run to store a reference in")
    if len(data) > sample_rows:
        data = data.sample(sample_rows, random_state=0)
    buffer = io.BytesIO()
    data.reset_index(drop=True).to_parquet(buffer, index=False)
    client.log_bytes(version.run_id, buffer.getvalue(), REFERENCE_FILE)
    from loopml.monitoring.profile import profile_dataset

    profile = profile_dataset(data)  # the mergeable profile, beside the sample it describes
    client.log_dict(version.run_id, profile.to_dict(), PROFILE_FILE)
    uri = f"runs:/{version.run_id}/{REFERENCE_FILE}"
    client.store.set_model_version_tag(version.name, version.version, REFERENCE_TAG, uri)
    return uri


def get_reference(client: Client, name: str, version: int) -> pd.DataFrame:
    """The reference stored with version ``version`` of ``name``; :class:`NotFound` says how to
    store one."""
    import io

    import pandas as pd

    found = client.store.get_model_version(name, version)
    uri = found.tags.get(REFERENCE_TAG)
    if not uri:
        raise NotFound(
            f"model version models:/{name}/{version} has no monitoring reference; store one "
            "with loopml.monitoring.set_reference(client, uri, training_frame), or pass "
            "--reference PATH"
        )
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    return pd.read_parquet(io.BytesIO(client.read_artifact(run_id, path)))


# -- the monitor -----------------------------------------------------------------------------------
class Monitor:
    """Scores tumbling windows of one served model's prediction log.

    ``model`` is the name the server serves it under, or a ``models:/`` URI (its name, and the
    version whose stored reference is used when ``reference`` is not given). Exactly one of
    ``window_rows`` and ``window_s`` sets the windows (default: 1,000 rows).
    """

    def __init__(
        self,
        client: Client,
        model: str,
        *,
        reference: pd.DataFrame | str | Path | None = None,
        window_rows: int | None = None,
        window_s: float | None = None,
        alerts: AlertManager | None = None,
        drift_options: Mapping[str, Any] | None = None,
    ) -> None:
        if window_rows is not None and window_s is not None:
            raise InvalidArgument("give window_rows or window_s, not both")
        if window_rows is None and window_s is None:
            window_rows = 1000
        if window_rows is not None and window_rows < 1:
            raise InvalidArgument(f"window_rows must be at least 1, got {window_rows}")
        if window_s is not None and not window_s > 0:
            raise InvalidArgument(f"window_s must be positive, got {window_s}")
        self.client = client
        self.model_uri = model
        self.window_rows = window_rows
        self.window_s = window_s
        self.alerts = alerts
        self.drift_options = dict(drift_options or {})
        self._reference_given = reference
        self.name, self._version = _name_and_version(client, model)
        self._detector: DriftDetector | None = None
        self._profile: DatasetProfile | None = None
        self._estimator: Any = None

    # -- what is compared -------------------------------------------------------------------
    def reference(self) -> pd.DataFrame:
        """The reference data: as given, else the one stored with the model version."""
        given = self._reference_given
        if given is None:
            if self._version is None:
                raise InvalidArgument(
                    f"monitor of {self.model_uri!r}: give a reference (a DataFrame or a file), "
                    "or a models:/ URI whose version has one stored (set_reference)"
                )
            return get_reference(self.client, self.name, self._version)
        if isinstance(given, (str, Path)):
            from loopml.monitoring.profile import read_table

            return read_table(given)
        return given

    def _fit(self, sample: pd.DataFrame) -> None:
        """Fit the drift detector and profile on the reference's input columns."""
        from loopml.monitoring.drift import DriftDetector
        from loopml.monitoring.profile import profile_dataset

        reference = self.reference()
        inputs = [c[len(_INPUT) :] for c in sample.columns if c.startswith(_INPUT)]
        columns = [c for c in inputs if c in reference.columns]
        if not columns:
            raise InvalidArgument(
                f"none of the logged input columns of {self.name!r} "
                f"({', '.join(inputs[:8]) or 'none'}) is in the reference "
                f"({', '.join(map(str, reference.columns[:8]))}): is it the right reference?"
            )
        frame = reference[columns].copy()
        prediction = self._reference_predictions(frame, _target_of(reference))
        if prediction is not None:
            frame["prediction"] = prediction
        options: dict[str, Any] = {"prediction": "prediction" if prediction is not None else None}
        options.update(self.drift_options)
        self._detector = DriftDetector(**options).fit(frame)
        self._profile = profile_dataset(reference[columns])

    def _reference_predictions(self, frame: pd.DataFrame, target: Any) -> Any:
        """The model's predictions on the reference (for prediction drift and the label-free
        estimate), or None when the model cannot be loaded here."""
        if self._version is None:
            return None
        try:
            from loopml.models import load_model
            from loopml.monitoring.performance import ConfidenceEstimator

            predictor = load_model(f"models:/{self.name}/{self._version}", client=self.client)
            predicted = predictor.predict(frame)
            if target is not None and "predict_proba" in predictor.methods:
                proba = predictor.predict_proba(frame)
                if proba.ndim == 2 and proba.shape[1] == 2:
                    self._estimator = ConfidenceEstimator().fit(proba, target)
            return predicted
        except Exception as exc:  # prediction drift is a bonus: input drift still runs
            log.warning("monitor %s: no reference predictions (%s)", self.name, exc)
            return None

    # -- running ------------------------------------------------------------------------------
    def run_once(self, *, now_ms: int | None = None, flush: bool = False) -> list[WindowResult]:
        """Score every complete window logged since the last run (``flush``: the last,
        incomplete one too). Returns the windows scored, oldest first."""
        from loopml.predictions import read_predictions

        run = self._run()
        last_end = int(run.tags.get(LAST_END_TAG, "0") or 0)
        log_frame = read_predictions(
            self.client.store,
            self.client.artifact_store(),
            self.name,
            start_ms=last_end + 1 if last_end else None,
        )
        if not len(log_frame):
            return []
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        windows = self._windows(log_frame, now, flush=flush)
        if not windows:
            return []
        if self._detector is None:
            self._fit(log_frame)
        index = int(run.tags.get(_WINDOWS_TAG, "0") or 0)
        results = []
        for start, end, rows in windows:
            result = self._score(index, start, end, rows)
            self._record(run, result, state={LAST_END_TAG: str(end), _WINDOWS_TAG: str(index + 1)})
            results.append(result)
            index += 1
        return results

    def backfill_performance(self) -> dict[int, dict[str, float]]:
        """Score the windows already processed again on the labels that arrived since, and
        record how far the label-free estimate was from the truth.

        For every window, the ``performance.*`` metrics on its rows that now have ground truth
        (and ``performance.estimate_error``, the gap between the estimated and the real
        accuracy) are appended to the series at the window's step. Returns them by window.
        """
        from loopml.predictions import read_predictions

        run = self._run()
        store = self.client.store
        bounds = {
            m.step: (int(m.value), m.timestamp)
            for m in store.get_metric_history(run.run_id, "window.start_ms")
        }
        if not bounds:
            return {}
        estimated = {
            m.step: m.value
            for m in store.get_metric_history(run.run_id, "performance.estimated_accuracy")
        }
        frame = read_predictions(
            store,
            self.client.artifact_store(),
            self.name,
            start_ms=min(start for start, _ in bounds.values()),
            end_ms=max(end for _, end in bounds.values()) + 1,
        )
        out: dict[int, dict[str, float]] = {}
        for step, (start, end) in sorted(bounds.items()):
            rows = frame[(frame["timestamp_ms"] >= start) & (frame["timestamp_ms"] <= end)]
            predicted = rows.get(_OUTPUT + "predict")
            values = _performance(rows, predicted, _stacked(rows.get(_OUTPUT + "predict_proba")))
            if not values:
                continue
            if step in estimated and "performance.accuracy" in values:
                values["performance.estimate_error"] = abs(
                    estimated[step] - values["performance.accuracy"]
                )
            from loopml.core.entities import Metric

            self.client.log_batch(
                run.run_id,
                metrics=[Metric(k, v, step=step, timestamp=end) for k, v in values.items()],
            )
            out[step] = values
        return out

    def run_forever(self, *, interval_s: float = 30.0, stop: Any = None) -> None:
        """Call :meth:`run_once` every ``interval_s`` seconds until ``stop`` (a
        ``threading.Event``) is set or the process is interrupted."""
        import threading

        stopper = stop or threading.Event()
        while not stopper.is_set():
            try:
                self.run_once()
            except Exception:  # keep watching: the next round may succeed
                log.exception("monitor %s: a round failed", self.name)
            stopper.wait(interval_s)

    def _windows(
        self, frame: pd.DataFrame, now_ms: int, *, flush: bool
    ) -> list[tuple[int, int, pd.DataFrame]]:
        frame = frame.sort_values(["timestamp_ms", "request_id", "row"], kind="stable")
        stamps = frame["timestamp_ms"].to_numpy()
        out: list[tuple[int, int, pd.DataFrame]] = []
        if self.window_rows is not None:
            size = self.window_rows
            start = 0
            while start < len(frame):
                stop = start + size
                if stop > len(frame) and not flush:
                    break
                # rows logged in the same millisecond stay in one window
                while stop < len(frame) and stamps[stop] == stamps[stop - 1]:
                    stop += 1
                part = frame.iloc[start:stop]
                out.append((int(stamps[start]), int(stamps[min(stop, len(frame)) - 1]), part))
                start = stop
            return out
        assert self.window_s is not None
        span = int(self.window_s * 1000)
        first = int(stamps[0]) // span * span
        edge = first
        while edge < int(stamps[-1]) + 1:
            end = edge + span
            if end > now_ms and not flush:
                break
            mask = (stamps >= edge) & (stamps < end)
            if mask.any():
                out.append((edge, end - 1, frame[mask]))
            edge = end
        return out

    def _score(self, index: int, start: int, end: int, rows: pd.DataFrame) -> WindowResult:

        from loopml.monitoring.quality import check_quality

        assert self._detector is not None and self._profile is not None
        current = rows[[c for c in rows.columns if c.startswith(_INPUT)]].rename(
            columns=lambda c: c[len(_INPUT) :]
        )
        predicted = rows.get(_OUTPUT + "predict")
        if predicted is not None:
            current = current.assign(prediction=predicted.to_numpy())
        values: dict[str, float] = {"rows": float(len(rows)), "window.start_ms": float(start)}
        messages: list[str] = []
        drift = self._detector.score(current)
        values["drift.share"] = float(drift.share_drifted)
        values["drift.dataset"] = float(drift.dataset_drifted)
        for name, column in drift.columns.items():
            if column.statistic is not None and not math.isnan(column.statistic):
                values[f"drift.column.{name}.statistic"] = float(column.statistic)
            values[f"drift.column.{name}.drifted"] = float(column.drifted)
        guess = drift.prediction
        if guess is not None and guess.statistic is not None and not math.isnan(guess.statistic):
            values["drift.prediction.statistic"] = float(guess.statistic)
            values["drift.prediction.drifted"] = float(guess.drifted)
        messages.extend(drift.warnings)
        quality = check_quality(self._profile, current.drop(columns="prediction", errors="ignore"))
        for name, q in quality.columns.items():
            values[f"quality.missing_rate.{name}"] = float(q.missing_rate_current)
            values[f"quality.out_of_range.{name}"] = float(q.out_of_range)
            values[f"quality.new_categories.{name}"] = float(q.new_category_rows)
        proba = _stacked(rows.get(_OUTPUT + "predict_proba"))
        performance = _performance(rows, predicted, proba)
        values.update(performance)
        labelled = int(performance.get("performance.labelled_rows", 0))
        if self._estimator is not None and proba is not None:
            estimate = self._estimator.estimate(proba)
            for key, value in estimate.items():
                values[f"performance.{key}"] = value
            if "performance.accuracy" in values and labelled == len(rows):
                values["performance.estimate_error"] = abs(
                    values["performance.estimated_accuracy"] - values["performance.accuracy"]
                )
        return WindowResult(
            model_name=self.name,
            index=index,
            start_ms=start,
            end_ms=end,
            rows=len(rows),
            labelled_rows=labelled,
            values=values,
            drift=drift,
            quality=quality,
            messages=tuple(messages),
        )

    def _record(self, run: Run, result: WindowResult, *, state: Mapping[str, str]) -> None:
        """The window's values and the monitor's new state in one transaction: a crash leaves
        either both or neither, so a restart never records a window twice."""
        from loopml.core.entities import Metric

        metrics = [
            Metric(key, value, step=result.index, timestamp=result.end_ms)
            for key, value in result.values.items()
            if math.isfinite(value)
        ]
        self.client.log_batch(run.run_id, metrics=metrics, tags=state)
        self._export(result)
        if self.alerts is not None:
            result.alerts.extend(
                self.alerts.evaluate(self.name, result.values, window_end_ms=result.end_ms)
            )

    def _export(self, result: WindowResult) -> None:
        """Set the Prometheus gauge ``loopml_monitor_value{model, metric}`` for every value."""
        gauge = _gauge()
        for key, value in result.values.items():
            gauge.labels(self.name, key).set(value)

    def _run(self) -> Run:
        """The tracking run that holds this monitor's series and state (made on first use)."""
        experiment = self.client.set_experiment(EXPERIMENT)
        name = f"monitor/{self.name}"
        found = self.client.search_runs(
            [experiment.experiment_id], filter=f"attributes.run_name = '{name}'", max_results=1
        ).items
        if found:
            return self.client.get_run(found[0].run_id)
        return self.client.create_run(
            experiment.experiment_id, name=name, capture_environment=False
        )


_GAUGE: Any = None


def _gauge() -> Any:
    """The process's one ``loopml_monitor_value`` gauge, shared by every monitor in it."""
    global _GAUGE
    if _GAUGE is None:
        from prometheus_client import Gauge

        _GAUGE = Gauge(
            "loopml_monitor_value",
            "The latest window's monitored values, by model and metric.",
            ("model", "metric"),
        )
    return _GAUGE


def _target_of(reference: pd.DataFrame) -> Any:
    """The labels of the reference, when it has a column named like them."""
    for name in ("target", "label", "y", "ground_truth"):
        if name in reference.columns:
            return reference[name].to_numpy()
    return None


def _name_and_version(client: Client, model: str) -> tuple[str, int | None]:
    if not model.startswith("models:/"):
        if "/" in model or ":" in model:
            raise InvalidArgument(
                f"monitor {model!r}: give the served model's name or a models:/ URI"
            )
        return model, None
    from loopml.models.uri import model_version, parse_model_uri

    version = model_version(parse_model_uri(model), client)
    return version.name, version.version


def _stacked(proba: Any) -> Any:
    """Logged ``predict_proba`` rows (lists) as one 2-D array, or None."""
    if proba is None:
        return None
    import numpy as np

    return np.vstack(proba.to_numpy())


def _performance(rows: pd.DataFrame, predicted: Any, proba: Any) -> dict[str, float]:
    """``performance.*`` on the rows of ``rows`` whose ground truth arrived (empty if none)."""
    from loopml.monitoring.performance import classification_metrics, regression_metrics

    truth = rows.get("ground_truth")
    if predicted is None or truth is None or not truth.notna().any():
        return {}
    if _is_classifier(predicted):
        found = classification_metrics(truth, predicted, proba)
    else:
        found = regression_metrics(truth, predicted)
    out = {f"performance.{key}": value for key, value in found.items()}
    out["performance.labelled_rows"] = float(truth.notna().sum())
    return out


def _is_classifier(predicted: Any) -> bool:
    import numpy as np

    values = np.asarray(predicted)
    if values.dtype.kind in "biuOSU":
        return True
    finite = values[np.isfinite(values)]
    return (
        bool(len(finite))
        and bool(np.all(finite == np.round(finite)))
        and (len(np.unique(finite)) <= 20)
    )
