"""Multivariate drift tests: they look at all columns at once and catch joint shifts.

``DomainClassifierDrift`` asks whether a classifier can tell reference rows from current rows;
``PCAReconstructionDrift`` asks whether current rows leave the reference's principal subspace.
Both take whole DataFrames and need scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
import pandas as pd

from loopml.errors import InvalidArgument
from loopml.monitoring._univariate import DriftTest, FloatArray, TestResult


def _frame(data: Any, owner: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InvalidArgument(f"{owner} needs a pandas DataFrame, got {type(data).__name__}")
    return data


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def _numeric(series: pd.Series[Any]) -> bool:
    return bool(series.dtype.kind in "biufmM")


def _column_floats(series: pd.Series[Any]) -> FloatArray:
    if series.dtype.kind in "mM":
        return np.where(series.isna(), np.nan, series.astype("int64")).astype(np.float64)
    result: FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return result


class DomainClassifierDrift(DriftTest):
    """Cross-validated ROC AUC of a classifier telling reference rows from current rows.

    A gradient-boosted tree model (scikit-learn ``HistGradientBoostingClassifier``) is trained
    on up to ``max_rows`` rows of each side with ``cv``-fold stratified cross-validation.
    An AUC near 0.5 means the two sides look alike; drift when the AUC leaves ``auc_band``.
    Non-numeric columns are encoded as reference category codes (unseen values: missing).
    """

    kind = "multivariate"
    method = "domain_classifier"

    def __init__(
        self,
        auc_band: tuple[float, float] = (0.45, 0.65),
        *,
        max_rows: int = 20_000,
        cv: int = 3,
        random_state: int = 0,
    ) -> None:
        self.auc_band = auc_band
        self.max_rows = max_rows
        self.cv = cv
        self.random_state = random_state

    def fit(self, reference: pd.DataFrame) -> Self:
        low, high = self.auc_band
        if not 0.0 <= low < high <= 1.0:
            raise InvalidArgument(
                f"DomainClassifierDrift: auc_band must be (low, high) with 0 <= low < high <= 1, "
                f"got {self.auc_band!r}"
            )
        if self.cv < 2 or self.max_rows < 2 * self.cv:
            raise InvalidArgument(
                f"DomainClassifierDrift: need cv >= 2 and max_rows >= 2 * cv, "
                f"got cv={self.cv!r}, max_rows={self.max_rows!r}"
            )
        frame = _frame(reference, "DomainClassifierDrift")
        if frame.shape[1] == 0 or len(frame) < self.cv:
            raise InvalidArgument(
                f"DomainClassifierDrift needs at least one column and {self.cv} reference rows, "
                f"got {frame.shape[1]} columns and {len(frame)} rows"
            )
        self.columns_ = list(frame.columns)
        self.categories_ = {
            column: pd.Index(frame[column].dropna().unique())
            for column in self.columns_
            if not _numeric(frame[column])
        }
        self.reference_ = self._encode(_sample(frame, self.max_rows, self.random_state))
        return self

    def _encode(self, frame: pd.DataFrame) -> FloatArray:
        matrix = np.full((len(frame), len(self.columns_)), np.nan)
        for i, column in enumerate(self.columns_):
            if column not in frame.columns:
                continue
            series = frame[column]
            categories = self.categories_.get(column)
            if categories is None:
                if _numeric(series):
                    matrix[:, i] = _column_floats(series)
                continue
            codes = categories.get_indexer(series.to_numpy())
            matrix[:, i] = np.where(codes < 0, np.nan, codes)
        return matrix

    def score(self, current: pd.DataFrame) -> TestResult:
        self._fitted("reference_")
        frame = _frame(current, "DomainClassifierDrift")
        if len(frame) < self.cv:
            raise InvalidArgument(
                f"DomainClassifierDrift needs at least {self.cv} current rows, got {len(frame)}"
            )
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        ours = self._encode(_sample(frame, self.max_rows, self.random_state))
        features = np.vstack([self.reference_, ours])
        labels = np.r_[np.zeros(len(self.reference_)), np.ones(len(ours))]
        model = HistGradientBoostingClassifier(
            max_iter=50, early_stopping=False, random_state=self.random_state
        )
        folds = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        auc = float(np.mean(cross_val_score(model, features, labels, cv=folds, scoring="roc_auc")))
        low, high = self.auc_band
        return TestResult(self.method, auc, None, high, not low <= auc <= high)


class PCAReconstructionDrift(DriftTest):
    """Mean PCA reconstruction error of current rows against the reference's error band.

    Numeric columns are standardised with reference statistics (missing values at the
    reference mean); PCA keeps the components explaining ``variance`` of the reference.
    The band is the reference's mean error +- ``n_sigma`` standard deviations of the mean error
    over ``chunks`` reference chunks, rescaled to the current row count. Drift outside the band.
    """

    kind = "multivariate"
    method = "pca_reconstruction"

    def __init__(
        self,
        variance: float = 0.65,
        n_sigma: float = 3.0,
        *,
        chunks: int = 10,
        max_rows: int = 100_000,
        random_state: int = 0,
    ) -> None:
        self.variance = variance
        self.n_sigma = n_sigma
        self.chunks = chunks
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, reference: pd.DataFrame) -> Self:
        if not 0.0 < self.variance < 1.0:
            raise InvalidArgument(
                f"PCAReconstructionDrift: variance must be between 0 and 1, got {self.variance!r}"
            )
        if not self.n_sigma > 0 or self.chunks < 2:
            raise InvalidArgument(
                "PCAReconstructionDrift: need n_sigma > 0 and chunks >= 2, "
                f"got n_sigma={self.n_sigma!r}, chunks={self.chunks!r}"
            )
        frame = _frame(reference, "PCAReconstructionDrift")
        self.columns_ = [c for c in frame.columns if _numeric(frame[c])]
        if not self.columns_ or len(frame) < 2 * self.chunks:
            raise InvalidArgument(
                "PCAReconstructionDrift needs at least one numeric column and "
                f"{2 * self.chunks} reference rows, got {len(self.columns_)} numeric columns "
                f"and {len(frame)} rows"
            )
        from sklearn.decomposition import PCA

        sample = _sample(frame, self.max_rows, self.random_state).sample(
            frac=1.0, random_state=self.random_state
        )
        raw = np.column_stack([_column_floats(sample[c]) for c in self.columns_])
        self.mean_ = np.nanmean(raw, axis=0)
        self.mean_ = np.where(np.isnan(self.mean_), 0.0, self.mean_)
        scale = np.nanstd(raw, axis=0)
        self.scale_ = np.where(np.isnan(scale) | (scale == 0), 1.0, scale)
        self.pca_ = PCA(n_components=self.variance, svd_solver="full").fit(self._standardise(raw))
        errors = self._errors(raw)
        chunk_means = [float(part.mean()) for part in np.array_split(errors, self.chunks)]
        self.error_mean_ = float(errors.mean())
        self.chunk_rows_ = len(errors) // self.chunks
        self.chunk_std_ = float(np.std(chunk_means, ddof=1))
        return self

    def _standardise(self, raw: FloatArray) -> FloatArray:
        filled = np.where(np.isnan(raw), self.mean_, raw)
        result: FloatArray = (filled - self.mean_) / self.scale_
        return result

    def _errors(self, raw: FloatArray) -> FloatArray:
        standard = self._standardise(raw)
        rebuilt = self.pca_.inverse_transform(self.pca_.transform(standard))
        result: FloatArray = np.sqrt(((standard - rebuilt) ** 2).sum(axis=1))
        return result

    def score(self, current: pd.DataFrame) -> TestResult:
        self._fitted("pca_")
        frame = _sample(_frame(current, "PCAReconstructionDrift"), self.max_rows, self.random_state)
        if not len(frame):
            raise InvalidArgument("PCAReconstructionDrift needs at least one current row, got 0")
        columns = [
            _column_floats(frame[c])
            if c in frame.columns and _numeric(frame[c])
            else np.full(len(frame), np.nan)
            for c in self.columns_
        ]
        error = float(self._errors(np.column_stack(columns)).mean())
        spread = self.n_sigma * self.chunk_std_ * math.sqrt(self.chunk_rows_ / len(frame))
        upper = self.error_mean_ + spread
        drifted = not self.error_mean_ - spread <= error <= upper
        return TestResult(self.method, error, None, upper, drifted)
