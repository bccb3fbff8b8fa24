"""Drift and data-quality reports on two tables, as one self-contained HTML page or as JSON.

``build_report(reference_df, current_df)`` profiles both tables (the current one on the
reference's bins), checks data quality, tests every column for drift and, given a target and
a prediction column, scores the predictions. ``report.to_html()`` is a single page that opens
without a network: inline CSS and inline SVG charts drawn from the profiles, no script, no
external font or image. ``report.to_dict()`` holds the same numbers.

Bad input does not raise: a column missing on one side, an all-null column, an empty table or
a changed type ends up in the report's ``warnings`` (and in the page's warnings box). Only a
file that is missing or cannot be read raises, in :func:`report_from_files`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from loopml._version import __version__
from loopml.core.jsonable import to_jsonable
from loopml.errors import InvalidArgument, LoopmlError, NotFound
from loopml.monitoring._page import render_html, summary_of

if TYPE_CHECKING:
    import pandas as pd

    from loopml.monitoring.drift import ColumnDrift, DriftReport
    from loopml.monitoring.profile import DatasetProfile
    from loopml.monitoring.quality import QualityReport

__all__ = [
    "REPORT_FORMATS",
    "MonitoringReport",
    "build_report",
    "render_html",
    "report_format",
    "report_from_files",
]

REPORT_FORMATS: Final = {".html": "html", ".htm": "html", ".json": "json"}


@dataclass(frozen=True)
class MonitoringReport:
    """Everything a report shows: drift, data quality, both profiles and prediction metrics.

    ``target_drift`` is the target column's drift (not counted in ``drift.share_drifted``);
    the prediction column's is ``drift.prediction``. ``metrics`` are computed on the current
    table, ``reference_metrics`` on the reference, when both hold the target and the
    prediction; ``task`` says which kind ("classification" or "regression").
    """

    title: str
    drift: DriftReport
    quality: QualityReport
    reference: DatasetProfile
    current: DatasetProfile
    target: str | None = None
    prediction: str | None = None
    target_drift: ColumnDrift | None = None
    task: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    reference_metrics: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    created_ms: int = 0

    def summary(self) -> dict[str, Any]:
        """The headline numbers (what the page's summary cards show)."""
        return summary_of(self.drift, self.quality, self.target_drift)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content: NaN and infinities spelled as strings."""
        data = {
            "title": self.title,
            "created_ms": self.created_ms,
            "loopml_version": __version__,
            "summary": self.summary(),
            "warnings": list(self.warnings),
            "drift": self.drift.to_dict(),
            "target": self.target,
            "prediction": self.prediction,
            "target_drift": self.target_drift,
            "task": self.task,
            "metrics": self.metrics,
            "reference_metrics": self.reference_metrics,
            "quality": self.quality.to_dict(),
            "profiles": {"reference": self.reference.to_dict(), "current": self.current.to_dict()},
        }
        result: dict[str, Any] = to_jsonable(data)
        return result

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def to_html(self) -> str:
        return render_html(
            self.drift,
            self.quality,
            self.reference,
            self.current,
            title=self.title,
            metrics=self.metrics,
            reference_metrics=self.reference_metrics,
            target_drift=self.target_drift,
            warnings=self.warnings,
            created_ms=self.created_ms,
        )

    def save(self, path: str | Path) -> Path:
        """Write the page (``.html``/``.htm``) or the JSON (``.json``), chosen by suffix."""
        target = Path(path)
        kind = report_format(target)
        text = self.to_html() if kind == "html" else self.to_json()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target


def report_format(path: str | Path) -> str:
    """``"html"`` or ``"json"`` from the file's suffix; InvalidArgument for any other."""
    suffix = Path(path).suffix.lower()
    kind = REPORT_FORMATS.get(suffix)
    if kind is None:
        raise InvalidArgument(
            f"cannot tell the report format of {str(path)!r} from its suffix {suffix!r}: use "
            f"one of {', '.join(REPORT_FORMATS)}",
            path=str(path),
        )
    return kind


# -- building ---------------------------------------------------------------------------------
def report_from_files(
    reference: str | Path,
    current: str | Path,
    *,
    target: str | None = None,
    prediction: str | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> MonitoringReport:
    """:func:`build_report` on two files (CSV, Parquet or JSON lines, by suffix).

    An empty (0-byte) file counts as a table without rows and is reported as a warning; a
    missing or unreadable file raises NotFound or InvalidArgument.
    """
    notes: list[str] = []
    ref_df = _read(Path(reference), "reference", notes)
    cur_df = _read(Path(current), "current", notes)
    return build_report(
        ref_df,
        cur_df,
        target=target,
        prediction=prediction,
        columns=columns,
        title=title or f"Drift report: {Path(current).name} against {Path(reference).name}",
        warnings=notes,
    )


def _read(path: Path, role: str, notes: list[str]) -> pd.DataFrame:
    import pandas as pd

    from loopml.monitoring.profile import read_table

    if not path.exists():
        raise NotFound(f"{role} file {str(path)!r} not found", path=str(path))
    if path.is_file() and path.stat().st_size == 0:
        notes.append(f"the {role} file {path.name!r} is empty: it has no rows to compare")
        return pd.DataFrame()
    return read_table(path)


def build_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    *,
    target: str | None = None,
    prediction: str | None = None,
    columns: Sequence[str] | None = None,
    title: str = "Drift report",
    warnings: Sequence[str] = (),
) -> MonitoringReport:
    """Profile, quality-check and drift-test ``current_df`` against ``reference_df``.

    ``columns`` limits the compared features (default: every reference column except the
    target and the prediction). ``target`` and ``prediction`` name the label and the model
    output columns: each gets its own drift row, and with both the current rows get
    classification metrics (accuracy, precision, recall, F1) or regression metrics (RMSE,
    MAE, R², MAPE), the task being inferred from the labels. ``warnings`` are notes to show
    along with the ones found here.
    """
    from loopml.monitoring.quality import check_quality

    notes = list(warnings)
    reference_df, current_df = _str_labels(reference_df), _str_labels(current_df)
    ref_names = [str(c) for c in reference_df.columns]
    cur_names = {str(c) for c in current_df.columns}
    outputs = [name for name in (target, prediction) if name is not None]
    for role, name in (("target", target), ("prediction", prediction)):
        if name is not None:
            where = [
                side
                for side, names in (("reference", set(ref_names)), ("current", cur_names))
                if name not in names
            ]
            if where:
                notes.append(
                    f"the {role} column {name!r} is not in the {' and '.join(where)} data; "
                    f"columns there: {_names(ref_names if 'reference' in where else cur_names)}"
                )
    if columns is None:
        features = [c for c in ref_names if c not in outputs]
    else:
        features = [c for c in dict.fromkeys(columns) if c in ref_names]
        unknown = [c for c in columns if c not in ref_names]
        if unknown:
            notes.append(
                f"asked for column(s) {', '.join(map(repr, unknown))} that the reference "
                f"does not have; its columns are: {_names(ref_names)}"
            )
    nested = _nested_columns(reference_df, current_df, [*features, *outputs])
    if nested:
        notes.append(
            f"column(s) {', '.join(map(repr, nested))} hold lists, dicts or other values "
            "that are not scalars: not tested for drift"
        )
        features = [c for c in features if c not in nested]
        outputs = [c for c in outputs if c not in nested]
    reference = _profile(reference_df, None)
    current = _profile(current_df, reference)
    quality = check_quality(reference, current_df if len(current_df.columns) else current)

    in_both = [
        name
        for name in (target, prediction)
        if name in cur_names and name in ref_names and name in outputs
    ]
    drift = _drift(
        reference_df,
        current_df,
        features,
        prediction=prediction if prediction in in_both else None,
        notes=notes,
    )
    target_drift = None
    if target is not None and target in in_both:
        target_report = _drift(reference_df, current_df, [target], prediction=None, notes=notes)
        target_drift = target_report.columns.get(target)
        notes.extend(w for w in target_report.warnings if w not in drift.warnings)
    task: str | None = None
    metrics: dict[str, float] = {}
    reference_metrics: dict[str, float] = {}
    if target is not None and prediction is not None and len(in_both) == 2:
        task, metrics, reference_metrics = _prediction_metrics(
            reference_df, current_df, target, prediction, notes
        )
    all_notes = tuple(dict.fromkeys([*notes, *drift.warnings]))
    return MonitoringReport(
        title=title,
        drift=drift,
        quality=quality,
        reference=reference,
        current=current,
        target=target,
        prediction=prediction,
        target_drift=target_drift,
        task=task,
        metrics=metrics,
        reference_metrics=reference_metrics,
        warnings=all_notes,
        created_ms=int(time.time() * 1000),
    )


def _str_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its column labels as text (Parquet and DataFrames may use numbers)."""
    if all(isinstance(label, str) for label in frame.columns):
        return frame
    return frame.rename(columns=str)


def _nested_columns(
    reference_df: pd.DataFrame, current_df: pd.DataFrame, names: Sequence[str]
) -> list[str]:
    """The columns among ``names`` that hold unhashable values (lists, dicts), on either side.

    Only object columns are looked at, so typed columns cost nothing.
    """
    import pandas as pd

    found: list[str] = []
    for name in names:
        for frame in (reference_df, current_df):
            column = frame[name] if name in frame.columns else None
            if isinstance(column, pd.Series) and column.dtype == object:
                try:
                    pd.unique(column)
                except TypeError:
                    found.append(name)
                    break
    return found


def _profile(frame: pd.DataFrame, reference: DatasetProfile | None) -> DatasetProfile:
    """The table's profile (on the reference's bins); an empty one for a table of no column."""
    from loopml.monitoring.profile import DatasetProfile, profile_dataset

    if not len(frame.columns):
        return DatasetProfile(rows=len(frame), columns={}, created_ms=int(time.time() * 1000))
    return profile_dataset(frame, edges_from=reference)


def _names(names: Sequence[str] | set[str]) -> str:
    shown = sorted(names) if isinstance(names, set) else list(names)
    if not shown:
        return "(none)"
    more = f" and {len(shown) - 20} more" if len(shown) > 20 else ""
    return ", ".join(shown[:20]) + more


def _drift(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    features: list[str],
    *,
    prediction: str | None,
    notes: list[str],
) -> DriftReport:
    """The detector's report, or an empty one saying why no column could be tested."""
    from loopml.monitoring.drift import DriftDetector, DriftReport

    if not features and prediction is None:
        notes.append("no column to test for drift")
    else:
        try:
            detector = DriftDetector(columns=features, prediction=prediction)
            return detector.fit(reference_df).score(current_df)
        except LoopmlError as exc:
            notes.append(f"drift could not be tested: {exc.message}")
    return DriftReport(
        columns={},
        share_drifted=0.0,
        dataset_drifted=False,
        share_threshold=0.5,
        n_reference=len(reference_df),
        n_current=len(current_df),
        correction=None,
        multivariate=None,
        prediction=None,
        warnings=(),
    )


def _prediction_metrics(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    target: str,
    prediction: str,
    notes: list[str],
) -> tuple[str | None, dict[str, float], dict[str, float]]:
    """The task and the metrics of the predictions on the current and the reference rows."""
    from loopml.evaluation.metrics import classification_metrics, regression_metrics
    from loopml.evaluation.tasks import CLASSIFICATION, infer_task

    pairs = []
    for frame in (current_df, reference_df):
        rows = frame[[target, prediction]].dropna()
        pairs.append((rows[target].to_numpy(), rows[prediction].to_numpy()))
    labelled = [p for p in pairs if len(p[0])]
    if not labelled:
        notes.append(
            f"no row has both the target {target!r} and the prediction {prediction!r}: no metrics"
        )
        return None, {}, {}
    y_true, y_pred = labelled[0]
    try:
        task = infer_task(y_true, y_pred, has_proba=False, estimator_type=None)
        results: list[dict[str, float]] = []
        for truth, predicted in pairs:
            if not len(truth):
                results.append({})
            elif task == CLASSIFICATION:
                outcome = classification_metrics(truth, predicted)
                results.append({k: outcome.metrics[k] for k in _CLASSIFICATION_METRICS})
            else:
                results.append(regression_metrics(truth, predicted))
    except (LoopmlError, TypeError, ValueError) as exc:
        message = exc.message if isinstance(exc, LoopmlError) else str(exc)
        notes.append(f"metrics could not be computed: {message}")
        return None, {}, {}
    if not len(pairs[0][0]):
        notes.append(f"no current row has both {target!r} and {prediction!r}: no metrics")
    return task, results[0], results[1]


_CLASSIFICATION_METRICS: Final = ("accuracy", "precision", "recall", "f1")
