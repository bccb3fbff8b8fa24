"""The prediction log: what a model server answered, and the ground truth that came later.

The server logs each request with :class:`PredictionLogger` (a bounded queue and one writer
thread); monitoring reads it back with :func:`read_predictions`. Rows are stored as Parquet
segments (see :mod:`loopml.predictions.segments`) in the artifact store, registered in the
metadata store. Importing this package is cheap: pyarrow and pandas load when first needed.
"""

from __future__ import annotations

from loopml.core.prediction_log import PredictionSegment, SegmentKind
from loopml.predictions.entries import FeedbackEntry, LoggerStats, PredictionEntry
from loopml.predictions.logger import PredictionLogger
from loopml.predictions.reader import read_feedback, read_predictions

__all__ = [
    "FeedbackEntry",
    "LoggerStats",
    "PredictionEntry",
    "PredictionLogger",
    "PredictionSegment",
    "SegmentKind",
    "read_feedback",
    "read_predictions",
]
